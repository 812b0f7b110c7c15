/**
 * The messages between the main thread (`threaded-webhook-sender.ts`) and a sender thread
 * (`webhook-sender-worker.ts`). Structured-cloned, nothing transferred: the strings of a
 * request (URL, headers, body) are copied once, which costs less than the bookkeeping a
 * transfer would need. Each side sends one message of each kind per event-loop turn,
 * carrying everything of that turn, except that a message is posted at once when it holds
 * {@link MAX_CALLS_PER_MESSAGE} calls or answers.
 *
 * Calls and answers travel as flat lists ({@link CallList}, {@link AnswerList}) rather than
 * an object each: structured clone writes every property name of every object, and the
 * receiving thread makes (and internalizes) each name again. Reading those names was about
 * 9% of the main thread's samples delivering to one fast target (`perf`, bench/deliver.ts);
 * an answer that is three numbers and three nulls costs next to nothing to clone. Headers go
 * as a flat name/value list, which undici takes as it is.
 */
import type { OutboundConfig } from "../config/defaults.js";
import type { SendErrorKind, SendResult } from "./classify-outcome.js";
import type { OutgoingRequest } from "./webhook-sender.js";

/**
 * Most requests (main thread to sender thread) or results (back) one message carries: a
 * full message is posted at once instead of at the end of the turn. With one message per
 * turn, a turn's requests moved through the main thread, the sender thread and the receiver
 * as one convoy, each waiting for the one before to finish the whole lot, so the threads took
 * turns instead of overlapping. In chunks of 16 the next stage starts while the previous one
 * goes on; to one fast target (bench/deliver.ts), together with the dispatcher's smaller
 * batches, that took ~16,000 deliveries/s to ~18,500 on a quiet machine, at the same CPU per
 * delivery. 8 and 32 measured the same or lower.
 */
export const MAX_CALLS_PER_MESSAGE = 16;

/** The thread's `workerData`: the options of its `createWebhookSender`, minus what cannot cross. */
export interface SenderThreadConfig {
  connectionsPerOrigin: number;
  keepAliveTimeoutMs?: number;
  closeTimeoutMs?: number;
  outbound?: OutboundConfig;
}

/**
 * Requests, numbered by the main thread, {@link CALL_SLOTS} entries each: id, URL, body,
 * timeout in ms, and the headers as a flat list (`[name, value, name, value, ...]`).
 */
export type CallList = (number | string | string[])[];

/** Entries per request in a {@link CallList}. */
export const CALL_SLOTS = 5;

/** Adds one request to `calls`. */
export function pushCall(calls: CallList, id: number, request: OutgoingRequest): void {
  const headers = request.headers;
  let flat: string[];
  if (Array.isArray(headers)) flat = headers;
  else {
    flat = [];
    for (const name in headers) flat.push(name, headers[name]!);
  }
  calls.push(id, request.url, request.body, request.timeoutMs, flat);
}

/** The id and request at `index` (a multiple of {@link CALL_SLOTS}) of `calls`. */
export function callAt(calls: CallList, index: number): { id: number; request: OutgoingRequest } {
  return {
    id: calls[index] as number,
    request: {
      url: calls[index + 1] as string,
      body: calls[index + 2] as string,
      timeoutMs: calls[index + 3] as number,
      headers: calls[index + 4] as string[],
    },
  };
}

/**
 * Results, {@link ANSWER_SLOTS} entries each: id, status (0: no answer), duration in ms,
 * `Retry-After` in ms (-1: none), error (null: none), error kind (null: none).
 */
export type AnswerList = (number | string | null)[];

/** Entries per result in an {@link AnswerList}. */
export const ANSWER_SLOTS = 6;

/** Adds the result of request `id` to `answers`. */
export function pushAnswer(answers: AnswerList, id: number, result: SendResult): void {
  answers.push(
    id,
    result.status ?? 0,
    result.durationMs,
    result.retryAfterMs ?? -1,
    result.error ?? null,
    result.errorKind ?? null,
  );
}

/** The result at `index` (a multiple of {@link ANSWER_SLOTS}) of `answers`, with only the fields it had. */
export function answerAt(answers: AnswerList, index: number): SendResult {
  const status = answers[index + 1] as number;
  const result: SendResult =
    status === 0
      ? { durationMs: answers[index + 2] as number }
      : { status, durationMs: answers[index + 2] as number };
  const retryAfterMs = answers[index + 3] as number;
  if (retryAfterMs !== -1) result.retryAfterMs = retryAfterMs;
  const error = answers[index + 4];
  if (error !== null) result.error = error as string;
  const errorKind = answers[index + 5];
  if (errorKind !== null) result.errorKind = errorKind as SendErrorKind;
  return result;
}

/** Main thread to sender thread. */
export type ToSenderThread =
  /** The requests of one turn. */
  | { type: "send"; calls: CallList }
  /** Close the sender (waiting for requests in flight up to its closeTimeoutMs), answer them all, then end. */
  | { type: "close" };

/** Sender thread to main thread. */
export type FromSenderThread =
  /** The results of one turn. */
  | { type: "results"; answers: AnswerList }
  /** A line for the main thread's logger. */
  | {
      type: "log";
      level: "info" | "warn" | "error";
      message: string;
      fields?: Record<string, unknown>;
    }
  /** Every request has been answered and the sender is closed; the thread ends next. */
  | { type: "closed" };
