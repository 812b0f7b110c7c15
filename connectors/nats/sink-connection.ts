/**
 * The sink's connection, and what it must know of the connection's state. The client drops
 * what is published while it reconnects (it clears its outbound buffer on each dial), and an
 * ack pending when the connection drops never comes (its reply went to the old connection).
 * So the sink waits for a reconnect before it publishes, and fails pending acks on a drop.
 */
import { connect, Events, type JetStreamClient, type NatsConnection } from "nats";
import { natsConnectionOptions, type NatsConnectionConfig } from "./connection.js";

export interface SinkConnection {
  nc: NatsConnection;
  js: JetStreamClient;
  /** Resolves when the connection next drops or closes. */
  nextDrop(): Promise<void>;
  /**
   * Resolves true once the connection is up (at once when it is, or when it closed for good,
   * so that publishing fails with the client's own error); false after `timeoutMs` or when
   * `signal` aborts first.
   */
  waitConnected(timeoutMs: number, signal: AbortSignal): Promise<boolean>;
}

/** A promise that the next `fire()` resolves; each fire starts a new one. */
function createPulse(): { next(): Promise<void>; fire(): void } {
  let fire = () => {};
  let next = new Promise<void>((resolve) => (fire = resolve));
  return {
    next: () => next,
    fire() {
      const resolve = fire;
      next = new Promise<void>((r) => (fire = r));
      resolve();
    },
  };
}

/** Connects (rejects as the client does when no server answers) and follows the connection's state. */
export async function openSinkConnection(
  config: NatsConnectionConfig,
  name: string,
  timeoutMs: number,
): Promise<SinkConnection> {
  const nc = await connect(natsConnectionOptions(config, name, timeoutMs));
  let connected = true;
  const drops = createPulse();
  const reconnects = createPulse();
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) {
        connected = false;
        drops.fire();
      } else if (status.type === Events.Reconnect) {
        connected = true;
        reconnects.fire();
      }
    }
  })();
  void nc.closed().then(() => {
    // Closed for good: publishing now fails at once with the client's own error.
    connected = true;
    drops.fire();
    reconnects.fire();
  });
  return {
    nc,
    js: nc.jetstream({ timeout: timeoutMs }),
    nextDrop: () => drops.next(),
    async waitConnected(waitMs, signal) {
      if (connected) return true;
      let timer: NodeJS.Timeout | undefined;
      let onAbort = () => {};
      const gaveUp = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), waitMs);
        onAbort = () => resolve(false);
        signal.addEventListener("abort", onAbort, { once: true });
      });
      try {
        return await Promise.race([reconnects.next().then(() => true), gaveUp]);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
