/**
 * Readiness probes of a local NATS cluster: a server answering on its client port, and
 * JetStream able to place a replicated stream.
 */
import { randomUUID } from "node:crypto";
import { connect as connectTcp } from "node:net";
import { connect, StorageType, type NatsConnection } from "nats";

/**
 * Resolves once a NATS server answers on 127.0.0.1:port (its first line, INFO, arrives);
 * rejects after `timeoutMs`.
 */
export async function waitUntilAnswering(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await answersWithInfo(port)) return;
    if (Date.now() > deadline)
      throw new Error(`no NATS server answered on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function answersWithInfo(port: number): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const socket = connectTcp({ host: "127.0.0.1", port });
    const done = (answer: boolean) => {
      socket.destroy();
      resolveAnswer(answer);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("data", (chunk: Buffer) => done(chunk.toString("latin1").startsWith("INFO ")));
  });
}

/**
 * Creates and deletes a tiny in-memory stream with `replicas` replicas until that works:
 * then a meta leader exists and enough servers are in the cluster to place the stream.
 */
export async function waitForJetStream(
  urls: string[],
  replicas: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let connection: NatsConnection | undefined;
  let lastError: unknown;
  // A create that timed out here may still complete in the cluster: those are deleted at the end.
  const earlierProbes: string[] = [];
  try {
    while (Date.now() < deadline) {
      // Each wait is bounded by what is left, so the whole call keeps close to timeoutMs.
      const waitMs = Math.max(250, Math.min(2_000, deadline - Date.now()));
      const probe = `relaybus_probe_${randomUUID().replaceAll("-", "")}`;
      try {
        connection ??= await connect({ servers: urls, timeout: waitMs, maxReconnectAttempts: -1 });
        const jsm = await connection.jetstreamManager({ timeout: waitMs });
        earlierProbes.push(probe);
        await jsm.streams.add({
          name: probe,
          subjects: [probe],
          num_replicas: replicas,
          storage: StorageType.Memory,
          max_msgs: 1,
        });
        for (const name of earlierProbes) await jsm.streams.delete(name).catch(() => false);
        return;
      } catch (error) {
        lastError = error;
        await sleep(250);
      }
    }
  } finally {
    await connection?.close();
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(
    `JetStream could not place a stream with ${replicas} replicas within ${timeoutMs} ms: ${reason}`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}
