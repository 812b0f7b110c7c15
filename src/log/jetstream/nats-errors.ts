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
 * True when a JetStream request went unanswered or no server took its subject (`TIMEOUT`,
 * `503`): what a cluster still electing its leaders answers, and worth asking again.
 */
export function isNatsTransient(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === "TIMEOUT" || code === "503";
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
