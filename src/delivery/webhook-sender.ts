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

/** Sends delivery requests. */
export interface WebhookSender {
  /**
   * POSTs `request` and reads the whole answer within `request.timeoutMs` (headers and body
   * together). Resolves with the status, or with an error and its kind; never rejects.
   */
  send(request: DeliveryRequest): Promise<SendResult>;
  /** Closes every pooled connection. */
  close(): Promise<void>;
}

/** The most of a non-2xx answer's body kept for the attempt record. */
const ERROR_EXCERPT_BYTES = 256;

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

  async function send(request: DeliveryRequest): Promise<SendResult> {
    const startedAt = performance.now();
    const elapsed = () => Math.round(performance.now() - startedAt);
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return { error: `invalid URL ${JSON.stringify(request.url)}`, errorKind: "invalid-request", durationMs: 0 };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return { error: `unsupported URL scheme ${url.protocol}`, errorKind: "invalid-request", durationMs: 0 };
    }
    // One deadline over headers and body: undici's own timeouts are per phase and reset on
    // every chunk, so a receiver trickling bytes could hold an attempt for ever.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), request.timeoutMs);
    try {
      const response = await agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: "POST",
        headers: request.headers,
        body: request.body,
        signal: controller.signal,
      });
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      const excerpt = await drain(response.body, ok ? 0 : ERROR_EXCERPT_BYTES, maxResponseBytes);
      const result: SendResult = { status: response.statusCode, durationMs: elapsed() };
      if (!ok) {
        if (excerpt !== "") result.error = excerpt;
        const retryAfterMs = parseRetryAfter(response.headers["retry-after"], Date.now());
        if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
      }
      return result;
    } catch (error) {
      const kind: SendErrorKind = controller.signal.aborted ? "timeout" : errorKind(error);
      const message =
        kind === "timeout" ? `no complete answer within ${request.timeoutMs} ms` : describeError(error);
      return { error: message, errorKind: kind, durationMs: elapsed() };
    } finally {
      clearTimeout(timer);
    }
  }

  async function close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), closeTimeoutMs);
    });
    const result = await Promise.race([agent.close().then(() => "closed" as const), bounded]);
    clearTimeout(timer);
    if (result === "late") {
      options.logger.warn("webhook sender: requests still in flight at close; aborting them");
      await agent.destroy();
    }
  }

  return { send, close };
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
