/**
 * Sends delivery requests over pooled keep-alive HTTP connections (undici), one attempt per
 * call. Network failures are outcomes, not exceptions: `send` never rejects.
 */
import { performance } from "node:perf_hooks";
import { Agent, errors } from "undici";
import type { DeliveryRequest } from "../log/log-engine.js";
import type { Logger } from "../types.js";
import { parseRetryAfter, type SendErrorKind, type SendResult } from "./classify-outcome.js";

/** Options of {@link createWebhookSender}. */
export interface WebhookSenderOptions {
  /** Keep-alive connections per target origin (`delivery.connectionsPerOrigin`, default 32). */
  connectionsPerOrigin: number;
  logger: Logger;
  /** How long an idle connection stays open. Default 4,000 ms (undici's default). */
  keepAliveTimeoutMs?: number;
  /** How long `close()` waits for requests still in flight before aborting them. Default 1,000 ms. */
  closeTimeoutMs?: number;
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
 * Past this many bytes an answer's body is not drained but its connection dropped: reading
 * a huge body only to reuse one socket costs more than opening a new one.
 */
const MAX_DRAIN_BYTES = 1_048_576;

/**
 * Creates a sender. One undici `Agent` keeps a `Pool` per origin with up to
 * `connectionsPerOrigin` keep-alive connections and pipelining 1: a webhook answer can take
 * seconds, and pipelining would queue other deliveries behind a slow one on the same socket.
 */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSender {
  const agent = new Agent({
    connections: options.connectionsPerOrigin,
    pipelining: 1,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
  });
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
      const excerpt = await drain(response.body, ok ? 0 : ERROR_EXCERPT_BYTES);
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
 * the first `keepBytes` as text for the attempt record.
 */
async function drain(body: AsyncIterable<Buffer> & { destroy(): void }, keepBytes: number): Promise<string> {
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
    if (total > MAX_DRAIN_BYTES) {
      body.destroy();
      break;
    }
  }
  return keptBytes === 0 ? "" : Buffer.concat(kept).toString("utf8").replace(/\s+/g, " ").trim();
}

function errorKind(error: unknown): SendErrorKind {
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

/** The message and, for system errors, the code (ECONNREFUSED and the like). */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = (error as { code?: unknown }).code ?? (cause as { code?: unknown } | undefined)?.code;
  const text = error.message === "" && cause instanceof Error ? cause.message : error.message;
  return typeof code === "string" && !text.includes(code) ? `${code}: ${text}` : text;
}
