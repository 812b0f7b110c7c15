/**
 * The messages between the main thread (`threaded-webhook-sender.ts`) and a sender thread
 * (`webhook-sender-worker.ts`). Plain objects, structured-cloned, nothing transferred: the
 * strings of a request (URL, headers, body) are copied once, which costs less than the
 * bookkeeping a transfer would need. Each side sends at most one message of each kind per
 * event-loop turn, carrying everything of that turn.
 */
import type { OutboundConfig } from "../config/defaults.js";
import type { DeliveryRequest } from "../log/log-engine.js";
import type { SendResult } from "./classify-outcome.js";

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
