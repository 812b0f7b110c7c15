/**
 * The redis sink: appends each event of a batch to a Redis stream with XADD, the whole batch
 * in one MULTI/EXEC transaction, so that Redis applies it at once and in order, or not at all
 * when the connection fails before EXEC.
 */
import type { Redis } from "ioredis";
import { SinkError, type SinkDefinition } from "../connector.js";
import type { CloudEvent } from "../../src/types.js";
import {
  createRedisClient,
  DEFAULT_REDIS_URL,
  REDIS_URL_SCHEMA,
  isRetryableRedisError,
  rootRedisError,
} from "./redis-client.js";

export interface RedisSinkConfig {
  /** Server URL, `redis://` or `rediss://` (default redis://127.0.0.1:6379). */
  url?: string;
  /** Key of the stream to append to; created by the first XADD. */
  stream: string;
  /** `cloudevent` (default): the structured CloudEvent JSON; `data`: only `event.data` as JSON. */
  format?: "cloudevent" | "data";
  /** Trims the stream to about this many entries on each write (`MAXLEN ~`); no trimming by default. */
  maxLength?: number;
  /** How long a batch may take before it fails as retryable (default 10,000 ms). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** Marks a batch that outlived `timeoutMs`. */
class WriteTimeoutError extends Error {}

export const redisSink: SinkDefinition<RedisSinkConfig> = {
  name: "redis",
  kind: "sink",
  description: "Appends each event to a Redis stream (XADD), a batch per MULTI/EXEC",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["stream"],
    properties: {
      url: REDIS_URL_SCHEMA,
      stream: { type: "string", minLength: 1, description: "Key of the stream to append to" },
      format: {
        enum: ["cloudevent", "data"],
        description:
          "cloudevent (default): field `event` holds the structured CloudEvent; data: field `data` holds event.data as JSON",
      },
      maxLength: {
        type: "integer",
        minimum: 1,
        description: "Approximate MAXLEN trimming on each XADD (default: none)",
      },
      timeoutMs: {
        type: "integer",
        minimum: 1,
        description: "Per-batch timeout in ms (default 10000)",
      },
    },
  },
  create(config, context) {
    const url = config.url ?? DEFAULT_REDIS_URL;
    const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const trim = config.maxLength === undefined ? [] : ["MAXLEN", "~", String(config.maxLength)];
    const name = `relaybus-sink:${context.streamName}:${config.stream}`;
    let client: Redis | undefined;
    let closed = false;

    /**
     * A connection whose batch timed out may still hold that batch queued in Redis (a paused
     * or overloaded server); closing it makes Redis discard the unexecuted transaction, so a
     * late EXEC cannot land after the retry. The next write opens a fresh connection.
     */
    function dropConnection(): void {
      client?.disconnect();
      client = undefined;
    }

    return {
      async write(events) {
        if (events.length === 0) return;
        if (closed)
          throw new SinkError(`redis stream ${config.stream}: the sink is closed`, {
            retryable: false,
          });
        client ??= createRedisClient(url, name, { logger: context.logger });
        const transaction = client.multi();
        for (const event of events) {
          const [field, value] = entryBody(event, config.format);
          transaction.xadd(config.stream, ...trim, "*", "id", event.id, field, value);
        }
        let results: [Error | null, unknown][] | null;
        try {
          results = await withTimeout(transaction.exec(), timeoutMs);
        } catch (error) {
          if (error instanceof WriteTimeoutError) dropConnection();
          throw classify(config.stream, error);
        }
        // A null result means Redis aborted the transaction (a WATCHed key changed): nothing was written.
        if (results === null)
          throw new SinkError(`redis stream ${config.stream}: transaction aborted`, {
            retryable: true,
          });
        const failed = results.find(([error]) => error !== null)?.[0];
        if (failed) throw classify(config.stream, failed);
      },
      async close() {
        closed = true;
        // The stream calls close() once writes settled, so nothing is left in flight to wait for.
        dropConnection();
      },
    };
  },
};

/** The field and value an event is written as; `id` always carries the event id beside it. */
function entryBody(
  event: CloudEvent,
  format: RedisSinkConfig["format"],
): [string, string | Buffer] {
  if (format !== "data") return ["event", JSON.stringify(event)];
  // Binary data goes as its bytes: Redis values are binary-safe.
  if (event.data === undefined && event.data_base64 !== undefined)
    return ["data", Buffer.from(event.data_base64, "base64")];
  return ["data", JSON.stringify(event.data ?? null)];
}

function classify(stream: string, error: unknown): SinkError {
  const root = rootRedisError(error);
  const message = root instanceof Error ? root.message : String(root);
  return new SinkError(`redis stream ${stream}: ${message}`, {
    retryable: isRetryableRedisError(error),
    cause: error,
  });
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new WriteTimeoutError(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}
