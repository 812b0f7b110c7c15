/**
 * The lease of {@link Leadership} in a JetStream key-value bucket whose entries expire: the
 * leader rewrites its entry every `renewMs` (a compare-and-set on the entry's revision, so
 * it fails once anyone else holds it); the others try to create the entry, which succeeds
 * only while it is absent, that is once the leader has deleted it (closing) or stopped
 * renewing it for `ttlMs` (died, or lost the cluster).
 *
 * A leader that cannot renew steps down at once, before its entry expires, so that two
 * nodes lead at the same time only while a leader's clock stalls for longer than the lease.
 */
import { randomUUID } from "node:crypto";
import type { KV, NatsConnection } from "nats";
import { errorMessage } from "../../errors.js";
import type { Logger } from "../../types.js";
import type { Leadership } from "../leadership.js";

/** How long a lease lasts without renewal, by default. */
export const DEFAULT_LEASE_TTL_MS = 10_000;

export interface JetStreamLeadershipOptions {
  connection: NatsConnection;
  /** The bucket: `<PREFIX>_LEASES`. */
  bucket: string;
  replicas: number;
  /** The lease's key in the bucket. */
  name: string;
  logger: Logger;
  ttlMs?: number;
}

export async function startJetStreamLeadership(options: JetStreamLeadershipOptions): Promise<Leadership> {
  const { connection, name, logger } = options;
  const ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const renewMs = Math.max(100, Math.floor(ttlMs / 4));
  const kv: KV = await connection.jetstream().views.kv(options.bucket, { history: 1, ttl: ttlMs, replicas: options.replicas });
  const nodeId = randomUUID();
  const listeners = new Set<(leader: boolean) => void>();
  let revision: number | undefined;
  let closed = false;

  const announce = (leader: boolean) => {
    logger.info(leader ? "cluster: this node now leads (streams and schedules run here)" : "cluster: this node no longer leads", {
      lease: name,
    });
    for (const listener of listeners) {
      try {
        listener(leader);
      } catch (error) {
        logger.error("cluster: a leadership listener failed", { error: errorMessage(error) });
      }
    }
  };

  const tick = async () => {
    if (closed) return;
    if (revision === undefined) {
      try {
        revision = await kv.create(name, nodeId);
      } catch {
        return; // held by another node
      }
      announce(true);
      return;
    }
    try {
      revision = await kv.update(name, nodeId, revision);
    } catch {
      // Taken by another node after ours ran out, or the cluster is out of reach: step down now.
      revision = undefined;
      announce(false);
    }
  };

  await tick();
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(tick);
  }, renewMs);
  timer.unref();

  return {
    get isLeader() {
      return revision !== undefined;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await running;
      if (revision !== undefined) {
        // Let another node lead at once instead of after the lease runs out.
        await kv.delete(name, { previousSeq: revision }).catch(() => undefined);
        revision = undefined;
      }
    },
  };
}
