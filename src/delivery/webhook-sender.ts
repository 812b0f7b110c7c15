/**
 * Sends delivery requests over pooled keep-alive HTTP connections (undici), one attempt per
 * call. Network failures are outcomes, not exceptions: `send` never rejects.
 *
 * Outbound safety: every connection goes through the guard of `outbound-guard.ts`, so a
 * target on an address `delivery.outbound` refuses ends as a `blocked-address` outcome.
 * Redirects are not followed (undici's `request` does not, and no redirect interceptor is
 * added): a 3xx is the attempt's answer, a permanent failure, so a receiver cannot point a
 * delivery at another host, refused or not.
 */
import type { LookupFunction } from "node:net";
import { performance } from "node:perf_hooks";
import { Agent, errors } from "undici";
import { DEFAULT_CONFIG, type OutboundConfig } from "../config/defaults.js";
import type { DeliveryRequest } from "../log/log-engine.js";
import type { Logger } from "../types.js";
import { parseRetryAfter, type SendErrorKind, type SendResult } from "./classify-outcome.js";
import { BlockedAddressError, compileOutboundPolicy, createGuardedConnector } from "./outbound-guard.js";

/** Options of {@link createWebhookSender}. */
export interface WebhookSenderOptions {
  /** Keep-alive connections per target origin (`delivery.connectionsPerOrigin`, default 32). */
  connectionsPerOrigin: number;
  logger: Logger;
  /** How long an idle connection stays open. Default 4,000 ms (undici's default). */
  keepAliveTimeoutMs?: number;
  /** How long `close()` waits for requests still in flight before aborting them. Default 1,000 ms. */
  closeTimeoutMs?: number;
  /**
   * The addresses deliveries may reach and the most of an answer read (`delivery.outbound`).
   * Default `DEFAULT_CONFIG.delivery.outbound`: public addresses only, 1 MiB.
   */
  outbound?: OutboundConfig;
  /** Resolves target host names; default `dns.lookup`. Its answers are judged like any. */
  lookup?: LookupFunction;
}

/**
 * A request as the sender takes it: a delivery's request, whose headers may also come as a
 * flat name/value list (`[name, value, name, value, ...]`), as undici takes them and as the
 * sender threads receive them (`webhook-sender-protocol.ts`).
 */
export interface OutgoingRequest extends Omit<DeliveryRequest, "headers"> {
  headers: Record<string, string> | string[];
}

/** Sends delivery requests. */
export interface WebhookSender {
  /**
   * POSTs `request` and reads the whole answer within `request.timeoutMs` (headers and body
   * together). Resolves with the status, or with an error and its kind; never rejects.
   */
  send(request: OutgoingRequest): Promise<SendResult>;
  /**
   * Closes every pooled connection, letting requests in flight finish for up to
   * `closeTimeoutMs`, then aborting them (they resolve as `connection` errors). Calling it
   * again returns the same promise.
   */
  close(): Promise<void>;
}

/** The most of a non-2xx answer's body kept for the attempt record. */
const ERROR_EXCERPT_BYTES = 256;

/**
 * The abort signal of one attempt: the least undici takes as a `signal` (an EventEmitter's
 * `on`, `once` and `removeListener`; it registers one listener per request). It replaces an
 * AbortController per request, whose EventTarget machinery and garbage cost more, measured
 * in the notes of `createWebhookSender`. `cause` says why it fired.
 */
class AttemptSignal {
  aborted = false;
  reason: Error | undefined = undefined;
  cause: "timeout" | "closed" | undefined = undefined;
  private listener: (() => void) | undefined = undefined;
  private others: (() => void)[] | undefined = undefined;

  on(_event: "abort", listener: () => void): this {
    if (this.listener === undefined) this.listener = listener;
    else (this.others ??= []).push(listener);
    return this;
  }

  once(event: "abort", listener: () => void): this {
    return this.on(event, listener);
  }

  removeListener(_event: "abort", listener: () => void): this {
    if (this.listener === listener) this.listener = undefined;
    else if (this.others !== undefined) this.others = this.others.filter((other) => other !== listener);
    return this;
  }

  abort(cause: "timeout" | "closed"): void {
    if (this.aborted) return;
    this.aborted = true;
    this.cause = cause;
    this.reason = new Error(cause === "timeout" ? "attempt timed out" : "sender closed");
    const listeners = [this.listener, ...(this.others ?? [])];
    this.listener = undefined;
    this.others = undefined;
    for (const listener of listeners) listener?.();
  }
}

const abortOnTimeout = (signal: AttemptSignal) => signal.abort("timeout");

/** Where a request goes, parsed from its URL, or why it cannot go. */
type Target = { origin: string; path: string } | string;

/** Most URLs kept parsed; past it the cache starts over (targets are few, URLs repeat). */
const TARGET_CACHE_SIZE = 10_000;

/** Parses target URLs once each: a target sends every delivery to the same URL. */
function createTargetCache(): { get(url: string): Target } {
  let cache = new Map<string, Target>();
  return {
    get(url) {
      let target = cache.get(url);
      if (target === undefined) {
        target = parseTarget(url);
        if (cache.size >= TARGET_CACHE_SIZE) cache = new Map();
        cache.set(url, target);
      }
      return target;
    },
  };
}

function parseTarget(text: string): Target {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `invalid URL ${JSON.stringify(text)}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `unsupported URL scheme ${url.protocol}`;
  return { origin: url.origin, path: `${url.pathname}${url.search}` };
}

/**
 * Creates a sender. One undici `Agent` keeps a `Pool` per origin with up to
 * `connectionsPerOrigin` keep-alive connections and pipelining 1: a webhook answer can take
 * seconds, and pipelining would queue other deliveries behind a slow one on the same socket.
 * Its `connect` is the outbound guard's connector, so the address check holds for every
 * connection any pool opens. Throws `InvalidConfig` if a CIDR block of `outbound` is bad.
 */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const outbound = options.outbound ?? DEFAULT_CONFIG.delivery.outbound;
  const connect = createGuardedConnector(
    compileOutboundPolicy(outbound),
    options.lookup === undefined ? {} : { lookup: options.lookup },
  );
  const agent = new Agent({
    connections: options.connectionsPerOrigin,
    pipelining: 1,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
    connect,
  });
  const maxResponseBytes = outbound.maxResponseBytes;
  const closeTimeoutMs = options.closeTimeoutMs ?? 1_000;
  const targets = createTargetCache();
  /** Attempts under way, so that a `close` past its wait can abort them. */
  const inFlight = new Set<AttemptSignal>();

  async function send(request: OutgoingRequest): Promise<SendResult> {
    const startedAt = performance.now();
    const target = targets.get(request.url);
    if (typeof target === "string") return { error: target, errorKind: "invalid-request", durationMs: 0 };
    // One deadline over headers and body: undici's own timeouts are per phase and reset on
    // every chunk, so a receiver trickling bytes could hold an attempt for ever.
    const signal = new AttemptSignal();
    const timer = setTimeout(abortOnTimeout, request.timeoutMs, signal);
    inFlight.add(signal);
    try {
      const response = await agent.request({
        origin: target.origin,
        path: target.path,
        method: "POST",
        headers: request.headers,
        body: request.body,
        signal,
      });
      const status = response.statusCode;
      if (status >= 200 && status < 300) {
        // The body is not kept: read it to its end (the connection goes back to the pool),
        // or past the cap destroy it (see drain). `dump` resolves when the body is
        // destroyed too, so an abort shows in the signal.
        await response.body.dump({ limit: Math.max(maxResponseBytes, 1) });
        if (signal.aborted) throw signal.reason;
        return { status, durationMs: Math.round(performance.now() - startedAt) };
      }
      const excerpt = await drain(response.body, ERROR_EXCERPT_BYTES, maxResponseBytes);
      const result: SendResult = { status, durationMs: Math.round(performance.now() - startedAt) };
      if (excerpt !== "") result.error = excerpt;
      const retryAfterMs = parseRetryAfter(response.headers["retry-after"], Date.now());
      if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
      return result;
    } catch (error) {
      const durationMs = Math.round(performance.now() - startedAt);
      if (signal.cause === "timeout") {
        return { error: `no complete answer within ${request.timeoutMs} ms`, errorKind: "timeout", durationMs };
      }
      if (signal.cause === "closed") {
        return { error: "sender closed with the request in flight", errorKind: "connection", durationMs };
      }
      return { error: describeError(error), errorKind: errorKind(error), durationMs };
    } finally {
      clearTimeout(timer);
      inFlight.delete(signal);
    }
  }

  let closed: Promise<void> | undefined;
  async function closeOnce(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), closeTimeoutMs);
    });
    const closing = agent.close();
    const result = await Promise.race([closing.then(() => "closed" as const), bounded]);
    clearTimeout(timer);
    if (result === "late") {
      options.logger.warn("webhook sender: requests still in flight at close; aborting them");
      // Aborted one by one: once `close` has begun, the Agent has let go of its pools, so
      // `agent.destroy()` would reach none of them. Each abort destroys its socket, and the
      // pools' close then completes.
      for (const signal of inFlight) signal.abort("closed");
      await closing;
    }
  }

  return {
    send,
    close: () => (closed ??= closeOnce()),
  };
}

/**
 * Reads an answer's body to its end so that the connection goes back to the pool, keeping
 * the first `keepBytes` as text for the attempt record. Past `maxBytes` (at most one chunk,
 * 64 KiB, beyond it) the body is destroyed, which closes its connection: reading a huge body
 * only to reuse one socket costs more than opening a new one, and an endless body must not
 * hold the attempt. Memory stays at `keepBytes` plus one chunk whatever the body's size; a
 * body that trickles below the cap is ended by the attempt's timeout instead. A 2xx whose
 * body is cut is still a success: the receiver said so in its status.
 */
async function drain(
  body: AsyncIterable<Buffer> & { destroy(): void },
  keepBytes: number,
  maxBytes: number,
): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (keptBytes < keepBytes) {
      const part = chunk.subarray(0, keepBytes - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
    if (total > maxBytes) {
      body.destroy();
      break;
    }
  }
  return keptBytes === 0 ? "" : Buffer.concat(kept).toString("utf8").replace(/\s+/g, " ").trim();
}

function errorKind(error: unknown): SendErrorKind {
  if (blockedAddress(error) !== undefined) return "blocked-address";
  if (error instanceof errors.InvalidArgumentError) return "invalid-request";
  if (
    error instanceof errors.HeadersTimeoutError ||
    error instanceof errors.BodyTimeoutError ||
    error instanceof errors.ConnectTimeoutError
  ) {
    return "timeout";
  }
  // A header value Node's HTTP layer rejects (a newline in a target header, say).
  if (error instanceof TypeError && /header/i.test(error.message)) return "invalid-request";
  return "connection";
}

/** The guard's refusal, whether undici hands it over as is or as the cause of its own error. */
function blockedAddress(error: unknown): BlockedAddressError | undefined {
  if (error instanceof BlockedAddressError) return error;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause instanceof BlockedAddressError ? cause : undefined;
}

/** The message and, for system errors, the code (ECONNREFUSED and the like). */
function describeError(error: unknown): string {
  const blocked = blockedAddress(error);
  if (blocked !== undefined) return blocked.message;
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = (error as { code?: unknown }).code ?? (cause as { code?: unknown } | undefined)?.code;
  const text = error.message === "" && cause instanceof Error ? cause.message : error.message;
  return typeof code === "string" && !text.includes(code) ? `${code}: ${text}` : text;
}
