/**
 * Which node holds a claimed event: each node keeps the events of a shared work it holds with
 * its claim alive (claimed or renewed within the claim time, not acknowledged), and answers a
 * question on `<PREFIX>.holding.<work>.<bus>` for one of them; the others stay silent. The
 * stuck-consumer watch asks before it repairs a consumer whose floor stays put, since a floor
 * held by an event a live node is still working on (a target retrying) is not stuck.
 */
import type { NatsConnection, Subscription } from "nats";
import type { JetStreamNames } from "./jetstream-names.js";

/** How long the asking node waits for the node holding an event to say so. */
const ANSWER_WAIT_MS = 1_000;

export interface ClaimHolders {
  /** This node claimed, or renewed its claim on, event `seq` of `bus`. */
  holding(bus: string, seq: number): void;
  /** This node acknowledged event `seq` of `bus`. */
  released(bus: string, seq: number): void;
  /**
   * Whether some live node holds event `seq` of `bus`. No answer (none holds it, no node
   * answers questions yet, or the question was lost) counts as not held.
   */
  isHeld(bus: string, seq: number): Promise<boolean>;
  close(): void;
}

export function createClaimHolders(options: {
  connection: NatsConnection;
  names: JetStreamNames;
  /** The shared work's name: `dispatch`. */
  work: string;
  claimMs: number;
}): ClaimHolders {
  const { connection, names, work, claimMs } = options;
  /** Per bus: event sequence → when this node's claim on it runs out (ms). */
  const held = new Map<string, Map<number, number>>();

  const holds = (bus: string, seq: number): boolean => (held.get(bus)?.get(seq) ?? 0) > Date.now();

  const subscription: Subscription = connection.subscribe(names.holdingWildcard(work), {
    callback: (error, message) => {
      if (error !== null) return;
      const bus = names.busOfHoldingSubject(work, message.subject);
      const seq = Number(new TextDecoder().decode(message.data));
      if (bus !== undefined && holds(bus, seq)) message.respond();
    },
  });

  // Claims dropped without an ack (a closing node) run out here rather than staying forever.
  const sweepTimer = setInterval(() => {
    const nowMs = Date.now();
    for (const [bus, claims] of held) {
      for (const [seq, untilMs] of claims) if (untilMs <= nowMs) claims.delete(seq);
      if (claims.size === 0) held.delete(bus);
    }
  }, claimMs);
  sweepTimer.unref();

  return {
    holding(bus, seq) {
      let claims = held.get(bus);
      if (claims === undefined) held.set(bus, (claims = new Map()));
      claims.set(seq, Date.now() + claimMs);
    },
    released(bus, seq) {
      held.get(bus)?.delete(seq);
    },
    async isHeld(bus, seq) {
      try {
        await connection.request(names.holdingSubject(work, bus), new TextEncoder().encode(String(seq)), { timeout: ANSWER_WAIT_MS });
        return true;
      } catch {
        return false;
      }
    },
    close() {
      clearInterval(sweepTimer);
      subscription.unsubscribe();
    },
  };
}
