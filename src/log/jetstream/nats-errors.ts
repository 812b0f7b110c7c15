/** Telling JetStream's answers apart by their codes, never by their text. */
import { setTimeout as sleep } from "node:timers/promises";

/** JetStream's error codes for "stream not found" and "no message found". */
const NOT_FOUND_ERROR_CODES = new Set([10059, 10037]);

/** True when a NATS error says the stream or message asked for does not exist. */
export function isNatsNotFound(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const apiError = (error as { api_error?: { code?: number; err_code?: number } }).api_error;
  if (apiError !== undefined) return apiError.code === 404 || NOT_FOUND_ERROR_CODES.has(apiError.err_code ?? 0);
  return (error as { code?: unknown }).code === "404";
}

/**
 * True when the client refused a message larger than the server's `max_payload` (1 MB by
 * default): sending it again can never succeed.
 */
export function isNatsPayloadTooLarge(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "MAX_PAYLOAD_EXCEEDED";
}

/**
 * JetStream's "error creating store for stream". nats-server removes an account's stream
 * directory when its last stream is deleted, and a stream created at that moment fails so
 * ("could not create storage directory", seen with v2.9.10 when one node's streams were torn
 * down while another's were made); the same request a moment later succeeds.
 */
const STREAM_STORE_FAILED = 10077;

/**
 * True when a JetStream request went unanswered or no server took its subject (`TIMEOUT`,
 * `503`): what a cluster still electing its leaders answers, and worth asking again. Also a
 * stream whose store could not be created ({@link STREAM_STORE_FAILED}): asked again within
 * the set-up's window, a lasting cause (a full or read-only disk) still fails in the end.
 */
export function isNatsTransient(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (code === "TIMEOUT" || code === "503") return true;
  return (error as { api_error?: { err_code?: number } }).api_error?.err_code === STREAM_STORE_FAILED;
}

/**
 * Runs `attempt` again while it fails with an error `retryable` accepts, for up to `withinMs`,
 * waiting `pauseMs` between tries; any other error, or the last one, is thrown. Only for
 * operations a repeat cannot harm (making a stream that may exist, a publish with its id).
 */
export async function retryWhile<T>(
  attempt: () => Promise<T>,
  retryable: (error: unknown) => boolean,
  withinMs: number,
  pauseMs = 250,
): Promise<T> {
  const giveUpAtMs = Date.now() + withinMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (!retryable(error) || Date.now() >= giveUpAtMs) throw error;
      await sleep(pauseMs);
    }
  }
}
