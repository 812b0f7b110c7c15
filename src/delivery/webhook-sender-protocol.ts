/**
 * The messages between the main thread (`threaded-webhook-sender.ts`) and a sender thread
 * (`webhook-sender-worker.ts`). Plain objects, structured-cloned, nothing transferred: the
 * strings of a request (URL, headers, body) are copied once, which costs less than the
 * bookkeeping a transfer would need. Each side sends one message of each kind per
 * event-loop turn, carrying everything of that turn, except that a message is posted at once
 * when it holds {@link MAX_CALLS_PER_MESSAGE} calls or answers.
 */
import type { OutboundConfig } from "../config/defaults.js";
import type { DeliveryRequest } from "../log/log-engine.js";
import type { SendResult } from "./classify-outcome.js";

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

/** One request, numbered by the main thread. */
export interface SendCall {
  id: number;
  request: DeliveryRequest;
}

/** One answer to a {@link SendCall}. */
export interface SendAnswer {
  id: number;
  result: SendResult;
}

/** Main thread to sender thread. */
export type ToSenderThread =
  /** The requests of one turn. */
  | { type: "send"; calls: SendCall[] }
  /** Close the sender (waiting for requests in flight up to its closeTimeoutMs), answer them all, then end. */
  | { type: "close" };

/** Sender thread to main thread. */
export type FromSenderThread =
  /** The results of one turn. */
  | { type: "results"; answers: SendAnswer[] }
  /** A line for the main thread's logger. */
  | {
      type: "log";
      level: "info" | "warn" | "error";
      message: string;
      fields?: Record<string, unknown>;
    }
  /** Every request has been answered and the sender is closed; the thread ends next. */
  | { type: "closed" };
