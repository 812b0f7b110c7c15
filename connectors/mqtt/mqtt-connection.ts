/**
 * One MQTT connection, as both connectors use it: opened once, never reconnected behind the
 * connector's back. mqtt.js reconnects on its own by default and queues publishes while it is
 * offline; a sink would then confirm nothing and resend later, and a source would get its
 * unacknowledged messages again on a connection it no longer tracks. So a lost connection is
 * reported (`onLost`) and the connector decides: the sink opens a new one for its next write,
 * the source ends its run and the stream restarts it.
 */
import mqtt, {
  ErrorWithReasonCode,
  type IClientOptions,
  type IConnackPacket,
  type MqttClient,
} from "mqtt";
import { describeReasonCode } from "./reason-codes.js";

/** The broker the connectors use when their config names none. */
export const DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883";

/** What {@link openConnection} needs. */
export interface OpenConnectionOptions {
  url: string;
  /** mqtt.js options (client id, protocol version, session, credentials, properties, ...). */
  client: IClientOptions;
  /** Longest wait for the broker's CONNACK (ms). */
  timeoutMs: number;
  /** Gives up connecting when aborted. */
  signal?: AbortSignal;
  /**
   * Called with the client before it sends CONNECT, for what must see every packet: a
   * resumed session's messages can arrive right behind the CONNACK, before any `await`
   * after the connection resolves gets to run.
   */
  prepare?(client: MqttClient): void;
}

/** An open connection, and what its holder may ask of it. */
export interface MqttConnection {
  client: MqttClient;
  connack: IConnackPacket;
  /**
   * Calls `listener` once the connection ends other than through {@link MqttConnection.end}
   * (at once if it already did), with the broker's reason code on the error's `code` when it
   * said why (MQTT 5 DISCONNECT). Returns a function that removes the listener.
   */
  onLost(listener: (error: Error) => void): () => void;
  /** Whether the connection is still up. */
  isOpen(): boolean;
  /**
   * Closes the connection: politely (DISCONNECT) unless `force` or the broker does not answer
   * within a second. Idempotent.
   */
  end(force?: boolean): Promise<void>;
}

/** How long a polite close may take before the socket is simply dropped (ms). */
const END_GRACE_MS = 1_000;

/**
 * Connects; rejects with the broker's refusal (reason code on `code`) or the socket's error.
 * Messages do not name the broker: the connector that reports them does.
 */
export function openConnection(options: OpenConnectionOptions): Promise<MqttConnection> {
  const { url, timeoutMs, signal } = options;
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      ...options.client,
      reconnectPeriod: 0,
      // The timer below says why in our words; mqtt.js's own only backs it up.
      connectTimeout: timeoutMs + 1_000,
      resubscribe: false,
    });
    options.prepare?.(client);
    let connected = false;
    let ended = false;
    let lastError: Error | undefined;
    let disconnectCode: number | undefined;
    let lostWith: Error | undefined;
    const lostListeners = new Set<(error: Error) => void>();

    const timer = setTimeout(() => fail(new Error(`no CONNACK within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => fail(new Error("connecting was aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });

    // mqtt.js emits `error` for refusals and socket errors; without a listener it would throw.
    client.on("error", (error) => {
      lastError = error;
      if (!connected) fail(error);
    });
    client.on("disconnect", (packet) => {
      disconnectCode = packet.reasonCode;
    });
    client.on("close", () => {
      if (!connected) {
        fail(lastError ?? new Error("the connection closed before the broker answered CONNECT"));
      } else if (!ended && lostWith === undefined) {
        const error = lostError(disconnectCode, lastError);
        lostWith = error;
        for (const listener of lostListeners) listener(error);
        lostListeners.clear();
      }
    });
    client.once("connect", (connack) => {
      if (settled()) return;
      connected = true;
      cleanUp();
      resolve({
        client,
        connack,
        onLost(listener) {
          if (lostWith !== undefined) {
            const error = lostWith;
            queueMicrotask(() => listener(error));
            return () => {};
          }
          lostListeners.add(listener);
          return () => lostListeners.delete(listener);
        },
        isOpen: () => client.connected && !ended,
        end(force = false) {
          if (ended) return Promise.resolve();
          ended = true;
          return endClient(client, force);
        },
      });
    });

    let failed = false;
    function settled(): boolean {
      return failed || connected;
    }
    function fail(error: Error): void {
      if (settled()) return;
      failed = true;
      ended = true;
      cleanUp();
      client.end(true);
      reject(error);
    }
    function cleanUp(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  });
}

function lostError(disconnectCode: number | undefined, cause: Error | undefined): Error {
  if (disconnectCode !== undefined && disconnectCode !== 0) {
    return new ErrorWithReasonCode(
      `the broker closed the connection: ${describeReasonCode(disconnectCode)}`,
      disconnectCode,
    );
  }
  const why = cause === undefined ? "" : `: ${cause.message}`;
  return new Error(`the connection was lost${why}`, cause === undefined ? undefined : { cause });
}

function endClient(client: MqttClient, force: boolean): Promise<void> {
  return new Promise((resolve) => {
    // A polite end waits for the broker to acknowledge what is in flight; never for long.
    // A second end() is a no-op while the first runs, so the socket is dropped directly.
    const drop = setTimeout(() => {
      client.stream?.destroy();
      resolve();
    }, END_GRACE_MS);
    client.end(force, {}, () => {
      clearTimeout(drop);
      resolve();
    });
  });
}
