/**
 * The delivery engine: takes due deliveries from the store, sends them concurrently, and
 * records each attempt with what follows it (done, retry at a time, or dead letter). It
 * holds no delivery state of its own beyond what is in flight, so a restart resumes from
 * the store alone.
 */
import type { AttemptRecord, Delivery, DeliveryStore } from "../log/log-engine.js";
import type { Clock, Logger } from "../types.js";
import { classifyOutcome, type SendResult } from "./classify-outcome.js";
import { webhookTimestamp } from "./format-payload.js";
import { decideNext, type RandomSource } from "./retry-policy.js";
import type { WebhookSender } from "./webhook-sender.js";

/** Options of {@link createDeliveryEngine}. */
export interface DeliveryEngineOptions {
  deliveries: DeliveryStore;
  sender: Pick<WebhookSender, "send">;
  clock: Clock;
  logger: Logger;
  /** Attempts in flight at once across all targets (`delivery.maxInFlight`, default 256). */
  maxInFlight: number;
  /** Jitter source for retry delays. Default `Math.random`. */
  random?: RandomSource;
  /**
   * How long `close()` waits for attempts in flight. Default 5,000 ms. Attempts still
   * running then are abandoned unrecorded: their deliveries stay pending and are sent again
   * after a restart (at least once, never lost).
   */
  closeTimeoutMs?: number;
  /** Pause after a storage failure before trying again. Default 1,000 ms. */
  failureBackoffMs?: number;
}

/** A running delivery engine. */
export interface DeliveryEngine {
  /** Looks for due deliveries now (the dispatcher calls it after each commit). */
  wake(): void;
  /** Attempts in flight. */
  readonly inFlight: number;
  /** Stops starting attempts and waits (up to `closeTimeoutMs`) for those in flight. */
  close(): Promise<void>;
}

/** Longest `setTimeout` Node accepts (about 24.8 days); later wake-ups are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;
/** Floor of a re-check when the store says something is due but hands nothing out. */
const MIN_RECHECK_MS = 10;

/**
 * Creates and starts an engine.
 *
 * Scheduling: one pass ("pump") takes up to `maxInFlight - inFlight` due deliveries and
 * starts each without waiting for any, so a slow target never delays the start of another
 * attempt (fairness between targets when one of them fills every slot is a later issue).
 * Then it sleeps on one unref'd timer until the next delivery is due, or until a wake-up or
 * the end of an attempt triggers another pass; it never polls.
 *
 * Each attempt refreshes `webhook-timestamp` (receivers reject stale timestamps, and a retry
 * may come hours later) while `webhook-id` stays the delivery id on every attempt.
 */
export function createDeliveryEngine(options: DeliveryEngineOptions): DeliveryEngine {
  const { deliveries, sender, clock, logger, maxInFlight } = options;
  const random = options.random ?? Math.random;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;

  /** Ids the store must not hand out: in flight, or parked after a failed record. */
  const excluded = new Set<string>();
  const running = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let pumpQueued = false;
  let closed = false;
  /** Set when close() gave up waiting: late results are then not recorded. */
  let abandoned = false;

  function wake(): void {
    if (closed || pumpQueued) return;
    // Coalesce: a burst of wake-ups (one per finished attempt) makes one pass.
    pumpQueued = true;
    setImmediate(pump);
  }

  function pump(): void {
    pumpQueued = false;
    if (closed) return;
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    try {
      const free = maxInFlight - running.size;
      if (free <= 0) return; // a finishing attempt wakes us
      const nowMs = clock.nowMs();
      const due = deliveries.due(nowMs, free, excluded);
      for (const delivery of due) start(delivery);
      if (due.length === free) return; // maybe more due; a finishing attempt wakes us
      sleepUntilNextDue(nowMs);
    } catch (error) {
      logger.error("delivery: reading due deliveries failed; retrying", {
        retryInMs: failureBackoffMs,
        error: messageOf(error),
      });
      arm(failureBackoffMs);
    }
  }

  function sleepUntilNextDue(nowMs: number): void {
    let nextMs = deliveries.nextDueAtMs();
    if (nextMs === undefined) return; // nothing pending: the dispatcher wakes us
    if (nextMs <= nowMs) {
      // The earliest pending delivery is one in flight (it stays pending until recorded).
      // Ask for the earliest one not in flight, whenever it is due.
      const [first] = deliveries.due(Number.MAX_SAFE_INTEGER, 1, excluded);
      if (first === undefined) return; // all pending are in flight: their ends wake us
      nextMs = first.nextAttemptAtMs;
    }
    arm(Math.max(MIN_RECHECK_MS, nextMs - nowMs));
  }

  function arm(delayMs: number): void {
    if (closed) return;
    timer = setTimeout(pump, Math.min(delayMs, MAX_TIMER_MS));
    timer.unref();
  }

  function start(delivery: Delivery): void {
    excluded.add(delivery.id);
    const attempt = runAttempt(delivery).finally(() => {
      running.delete(attempt);
      wake();
    });
    running.add(attempt);
  }

  async function runAttempt(delivery: Delivery): Promise<void> {
    const number = delivery.attempts.length + 1;
    const startedAtMs = clock.nowMs();
    const request = {
      ...delivery.request,
      headers: { ...delivery.request.headers, "webhook-timestamp": webhookTimestamp(startedAtMs) },
    };
    let result: SendResult;
    try {
      result = await sender.send(request);
    } catch (error) {
      // The sender reports network failures as results; this is a defect, but still an outcome.
      result = { error: messageOf(error), errorKind: "connection", durationMs: clock.nowMs() - startedAtMs };
    }
    const classified = classifyOutcome(result);
    const next = decideNext({
      policy: delivery.retry,
      attempt: number,
      classified,
      nowMs: clock.nowMs(),
      eventReceivedAtMs: delivery.eventReceivedAtMs,
      random,
    });
    const record: AttemptRecord = {
      attempt: number,
      startedAtMs,
      durationMs: result.durationMs,
      outcome: classified.outcome,
    };
    if (result.status !== undefined) record.status = result.status;
    if (classified.error !== undefined) record.error = classified.error;
    if (abandoned) {
      excluded.delete(delivery.id);
      return;
    }
    try {
      deliveries.recordAttempt(delivery.id, record, next);
      excluded.delete(delivery.id);
    } catch (error) {
      // Unrecorded, the delivery is still pending and due: it will be sent again (at least
      // once). Parking it for a while keeps a failing store from turning into a tight loop
      // of requests to the receiver.
      logger.error("delivery: recording an attempt failed; the delivery will be retried", {
        deliveryId: delivery.id,
        attempt: number,
        error: messageOf(error),
      });
      setTimeout(() => {
        excluded.delete(delivery.id);
        wake();
      }, failureBackoffMs).unref();
      return;
    }
    if (next.kind === "dead") {
      logger.warn("delivery: dead-lettered", {
        deliveryId: delivery.id,
        bus: delivery.bus,
        rule: delivery.rule,
        targetId: delivery.targetId,
        reason: next.reason,
      });
    }
  }

  wake(); // pending deliveries from before a restart

  return {
    wake,
    get inFlight() {
      return running.size;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      if (running.size === 0) return;
      let bound: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((resolve) => {
        bound = setTimeout(() => resolve("late"), closeTimeoutMs);
      });
      const outcome = await Promise.race([Promise.allSettled([...running]).then(() => "done" as const), late]);
      clearTimeout(bound);
      if (outcome === "late") {
        abandoned = true;
        logger.warn("delivery: attempts still in flight at close; they stay pending", { inFlight: running.size });
      }
    },
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
