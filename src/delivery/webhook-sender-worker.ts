/**
 * A sender thread (a `node:worker_threads` worker): it runs one `createWebhookSender`, so the
 * HTTP client's CPU (request building, writes, response parsing, their garbage), ~35 µs a
 * delivery, lands on another core than the dispatcher's and the engine's.
 *
 * Requests arrive in batches (one message per main-thread turn, or per
 * `MAX_CALLS_PER_MESSAGE`); results leave the same way, gathered for one turn (until
 * `setImmediate`) or until `MAX_CALLS_PER_MESSAGE` of them, and posted as one message. Log
 * lines go to the main thread's logger as messages.
 *
 * Started by `threaded-webhook-sender.ts` through `src/start-worker.ts`; speaks
 * `webhook-sender-protocol.ts`. Nothing here may be ESM-only (see start-worker.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Logger } from "../types.js";
import {
  ANSWER_SLOTS,
  CALL_SLOTS,
  MAX_CALLS_PER_MESSAGE,
  callAt,
  pushAnswer,
  type AnswerList,
  type FromSenderThread,
  type SenderThreadConfig,
  type ToSenderThread,
} from "./webhook-sender-protocol.js";
import { createWebhookSender } from "./webhook-sender.js";

function run(): void {
  const port = parentPort;
  if (port === null) throw new Error("webhook-sender-worker.ts runs as a worker thread only");
  const config = workerData as SenderThreadConfig;
  const post = (message: FromSenderThread) => port.postMessage(message);
  const forward =
    (level: "info" | "warn" | "error") => (message: string, fields?: Record<string, unknown>) => {
      try {
        post(
          fields === undefined
            ? { type: "log", level, message }
            : { type: "log", level, message, fields },
        );
      } catch {
        // A field that cannot be cloned (a function, say) must not end the thread.
        post({ type: "log", level, message, fields: { fields: String(fields) } });
      }
    };
  const logger: Logger = { info: forward("info"), warn: forward("warn"), error: forward("error") };
  const sender = createWebhookSender({ ...config, logger });

  let answers: AnswerList = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    if (answers.length === 0) return;
    const batch = answers;
    answers = [];
    post({ type: "results", answers: batch });
  };
  /** Requests sent and not answered yet; close waits for them. */
  const inFlight = new Set<Promise<void>>();

  port.on("message", (message: ToSenderThread) => {
    if (message.type === "send") {
      const { calls } = message;
      for (let index = 0; index < calls.length; index += CALL_SLOTS) {
        const { id, request } = callAt(calls, index);
        const done = sender.send(request).then((result) => {
          inFlight.delete(done);
          pushAnswer(answers, id, result);
          // A full message goes now: the main thread starts on it while this thread goes on.
          if (answers.length >= MAX_CALLS_PER_MESSAGE * ANSWER_SLOTS) flush();
          else if (!flushScheduled) {
            flushScheduled = true;
            setImmediate(flush);
          }
        });
        inFlight.add(done);
      }
      return;
    }
    // close: the sender waits for what is in flight (up to its closeTimeoutMs), then aborts
    // it; every send then resolves, so every request gets its answer before "closed".
    void (async () => {
      await sender.close();
      await Promise.all(inFlight);
      flush();
      post({ type: "closed" });
      port.close();
    })();
  });
}

run();
