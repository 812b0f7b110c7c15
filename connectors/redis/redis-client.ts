/**
 * The Redis connections the redis source and sink open, and the one place that decides
 * whether a Redis failure is worth retrying.
 */
import { Redis, ReplyError } from "ioredis";
import type { Logger } from "../../src/types.js";

/** The URL both connectors use when the config gives none. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/** The `url` field of both redis configs' schemas. */
export const REDIS_URL_SCHEMA = {
  type: "string",
  pattern: "^rediss?://",
  description: `Server URL (default ${DEFAULT_REDIS_URL})`,
} as const;

/** How long a closing connection may take to end before its socket is destroyed. */
const DISCONNECT_TIMEOUT_MS = 300;

/**
 * Opens (lazily, on the first command) a connection named `name` in `CLIENT LIST`, so that an
 * operator can tell Relaybus's connections apart. Commands fail after one reconnect attempt
 * instead of ioredis's default twenty, so that a broken server surfaces as a failed write or
 * run within seconds and the stream's own backoff takes over.
 */
export function createRedisClient(
  url: string,
  name: string,
  options: { logger: Logger; commandTimeoutMs?: number },
): Redis {
  const client = new Redis(url, {
    connectionName: clientName(name),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs,
    // On disconnect ioredis arms a timer to destroy a socket that does not close; for a socket
    // already gone (a refused connect) it lingers the full time. Redis closes at once anyway.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
  });
  // ioredis emits an error per failed reconnect; the failures reach callers through their
  // commands, so one line per distinct message is enough for the log.
  let lastLogged: string | undefined;
  client.on("error", (error: Error) => {
    if (error.message === lastLogged) return;
    lastLogged = error.message;
    options.logger.warn("redis connection error", { connection: name, error: error.message });
  });
  client.on("ready", () => (lastLogged = undefined));
  return client;
}

/** CLIENT SETNAME refuses spaces and newlines; the name is only a label, so they become `_`. */
function clientName(name: string): string {
  return name.replace(/[^\x21-\x7e]/g, "_");
}

/**
 * Error replies a retry may outlive, by their code (the reply's first word):
 * - LOADING, BUSY: the server is loading its dataset or running a long script;
 * - TRYAGAIN, CLUSTERDOWN, MASTERDOWN, READONLY, NOREPLICAS: a failover or resharding is under way;
 * - MISCONF: the server refuses writes because its last save failed, until the disk is fixed;
 * - OOM: memory is above `maxmemory`; trimming, eviction or an operator frees it, and the
 *   batch itself is not at fault, so it waits rather than being dropped.
 * Every other reply (WRONGTYPE: the key holds something other than a stream; NOAUTH,
 * WRONGPASS, NOPERM: credentials or ACL refused; ERR: a malformed command) needs a person.
 */
const RETRYABLE_REPLY_CODES: ReadonlySet<string> = new Set([
  "LOADING",
  "BUSY",
  "TRYAGAIN",
  "CLUSTERDOWN",
  "MASTERDOWN",
  "READONLY",
  "NOREPLICAS",
  "MISCONF",
  "OOM",
]);

const ReplyErrorClass = ReplyError as new (message: string) => Error;

/**
 * The error that says what went wrong: for a transaction Redis refused as a whole (EXECABORT,
 * when a command was refused while queuing: NOPERM, OOM...), the first refusal; else `error`.
 */
export function rootRedisError(error: unknown): unknown {
  if (!(error instanceof ReplyErrorClass) || redisCode(error) !== "EXECABORT") return error;
  const previous = (error as { previousErrors?: unknown[] }).previousErrors;
  return previous?.[0] ?? error;
}

/** The error code Redis put first in an error reply (`WRONGTYPE`, `OOM`...), if `error` is one. */
export function redisReplyCode(error: unknown): string | undefined {
  const root = rootRedisError(error);
  return root instanceof ReplyErrorClass ? redisCode(root) : undefined;
}

/** Redis error replies start with their code, one upper-case word, by protocol. */
function redisCode(error: Error): string | undefined {
  return error.message.split(" ", 1)[0];
}

/**
 * Whether a retry may succeed: true for connection errors, timeouts and the transient replies
 * above; false for replies a retry cannot change.
 */
export function isRetryableRedisError(error: unknown): boolean {
  const code = redisReplyCode(error);
  return code === undefined || RETRYABLE_REPLY_CODES.has(code);
}
