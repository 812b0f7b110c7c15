/**
 * The one place that decides what an attempt's result means: success, retryable or
 * permanent (shared/DESIGN.md section 6). Everything else in delivery branches on the
 * class this returns, never on statuses or error text.
 */
import type { AttemptRecord } from "../log/log-engine.js";

/** How an attempt ended, as the delivery store records it. */
export type AttemptOutcome = AttemptRecord["outcome"];

/**
 * Why a request got no HTTP answer:
 * - `timeout`: no complete answer within the request's `timeoutMs` (headers and body);
 * - `connection`: the connection could not be opened or broke (DNS, refused, reset, TLS);
 * - `invalid-request`: the request itself cannot be sent (a bad URL or header value), so
 *   sending it again cannot help;
 * - `blocked-address`: the target's address is one `delivery.outbound` refuses (loopback,
 *   private, link-local, metadata, ...; see `outbound-guard.ts`). The error names the
 *   address and the setting that would allow it; trying again cannot help.
 */
export type SendErrorKind = "timeout" | "connection" | "invalid-request" | "blocked-address";

/** What the sender reports for one attempt; never an exception. */
export interface SendResult {
  /** HTTP status, absent when no answer arrived. */
  status?: number;
  /** The answer's `Retry-After`, parsed, in ms from when the answer arrived. */
  retryAfterMs?: number;
  /** What went wrong: a network error, or a short excerpt of a non-2xx answer's body. */
  error?: string;
  /** Set when there is no status: why the request got no answer. */
  errorKind?: SendErrorKind;
  /** Wall time of the attempt, from sending to the end of the answer's body. */
  durationMs: number;
}

/** The class of one attempt, with what the retry policy needs. */
export interface ClassifiedOutcome {
  outcome: AttemptOutcome;
  /** A one-line description for attempt records and dead-letter reasons; absent on success. */
  error?: string;
  /** The receiver's `Retry-After`, in ms; only on retryable outcomes. */
  retryAfterMs?: number;
}

/**
 * Classifies one attempt:
 * - 2xx: success;
 * - 408, 429, 5xx, timeouts and connection errors: retryable;
 * - other statuses (4xx, and 3xx since redirects are not followed): permanent. A moved
 *   endpoint needs a change of the target, and following redirects would let a receiver
 *   point signed deliveries anywhere;
 * - 410 Gone is permanent too, and more: target health (`target-health.ts`) disables the
 *   target, whose later deliveries then go to the dead letters unsent;
 * - a request that cannot be sent at all (`invalid-request`), or only to an address the
 *   outbound policy refuses (`blocked-address`), is permanent.
 */
export function classifyOutcome(result: SendResult): ClassifiedOutcome {
  const { status } = result;
  if (status === undefined) {
    const kind = result.errorKind ?? "connection";
    const error = `${kind}: ${result.error ?? "no response"}`;
    const permanent = kind === "invalid-request" || kind === "blocked-address";
    return permanent ? { outcome: "permanent", error } : { outcome: "retryable", error };
  }
  if (status >= 200 && status < 300) return { outcome: "success" };
  const error = result.error === undefined || result.error === "" ? `HTTP ${status}` : `HTTP ${status}: ${result.error}`;
  if (status === 408 || status === 429 || status >= 500) {
    return result.retryAfterMs === undefined
      ? { outcome: "retryable", error }
      : { outcome: "retryable", error, retryAfterMs: result.retryAfterMs };
  }
  return { outcome: "permanent", error };
}

/**
 * Parses a `Retry-After` header value, either delay-seconds (`"120"`) or an HTTP date
 * (`"Wed, 21 Oct 2015 07:28:00 GMT"`), into a delay in ms from `nowMs`. A date in the past
 * gives 0. Returns undefined for an absent or unreadable value, so that a malformed header
 * falls back to the ordinary backoff rather than failing the attempt.
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (text === undefined || text === "") return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // Only the HTTP-date form has letters; Date.parse would also accept "2" or "1.5" as dates.
  if (!/[A-Za-z]/.test(text)) return undefined;
  const atMs = Date.parse(text);
  if (Number.isNaN(atMs)) return undefined;
  return Math.max(0, atMs - nowMs);
}
