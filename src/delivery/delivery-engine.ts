/**
 * The delivery engine: leases due deliveries from the store, sends them concurrently, and
 * records each attempt with what follows it (done, retry at a time, or dead letter). It
 * holds no delivery state of its own beyond what is in flight, so a restart resumes from
 * the store alone.
 */
import { errorMessage } from "../errors.js";
import type { AttemptRecord, AttemptToRecord, Delivery, DeliveryStore } from "../log/log-engine.js";
import type { Clock, Logger } from "../types.js";
import { classifyOutcome, type SendResult } from "./classify-outcome.js";
import { webhookTimestamp } from "./format-payload.js";
import { decideNext, type RandomSource } from "./retry-policy.js";
import type { WebhookSigner } from "./sign-webhook.js";
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
  /**
   * Signs each attempt (`webhook-signature`, Standard Webhooks) with its target's active
   * secrets. Without one, requests go unsigned.
   */
  signer?: WebhookSigner;
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
 * How long a lease outlives the request's own timeout. The sender gives up at `timeoutMs`
 * and the attempt is recorded in the next turn, so a lease runs out only if the process
 * died (or stalled this long): then the delivery is due again, at least once.
 */
export const LEASE_MARGIN_MS = 30_000;

/**
 * Creates and starts an engine.
 *
 * Scheduling: one pass ("pump") first records the attempts that finished since the last
 * one, then leases up to `maxInFlight - inFlight` due deliveries and starts each without
 * waiting for any, so a slow target never delays the start of another attempt (fairness
 * between targets when one of them fills every slot is a later issue). Then it sleeps on one
 * unref'd timer until the next delivery is due, or until a wake-up or the end of an attempt
 * triggers another pass; it never polls.
 *
 * Attempts that end in one event-loop turn are recorded together, in one transaction, by
 * the pump that follows: a commit per attempt was most of the main thread's time. A leased
 * delivery is not due, so the store does not hand it out again while its attempt runs or
 * waits to be recorded.
 *
 * Each attempt refreshes `webhook-timestamp` (receivers reject stale timestamps, and a retry
 * may come hours later) while `webhook-id` stays the delivery id on every attempt. The
 * signature covers the timestamp, so it is computed here too, per attempt, over the body
 * exactly as sent; it is never stored, so dead letters and redrives hold no signature.
 */
export function createDeliveryEngine(options: DeliveryEngineOptions): DeliveryEngine {
  const { deliveries, sender, clock, logger, maxInFlight } = options;
  const random = options.random ?? Math.random;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  const signer = options.signer;

  /** Ids of deliveries taken and not yet recorded: running, finished, or parked. */
  const held = new Set<string>();
  const running = new Set<Promise<void>>();
  /** Attempts that ended and wait for the next pump to record them. */
  let finished: Array<{ delivery: Delivery; record: AttemptToRecord }> = [];
  /**
   * Deliveries whose record failed, back from parking: sent again from here, since their
   * lease keeps the store from handing them out until it runs out.
   */
  const returned: Delivery[] = [];
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
    recordFinished();
    try {
      const free = maxInFlight - running.size;
      if (free <= 0) return; // a finishing attempt wakes us
      const nowMs = clock.nowMs();
      const leased = deliveries.leaseDue(nowMs, free, LEASE_MARGIN_MS);
      let started = 0;
      for (const delivery of leased) {
        // Held already only if a lease ran out under a stalled attempt: one send at a time.
        if (held.has(delivery.id)) continue;
        start(delivery);
        started++;
      }
      // The store answered, so parked deliveries may go again.
      while (started < free && returned.length > 0) {
        start(returned.shift()!);
        started++;
      }
      if (started === free || leased.length === free) return; // maybe more; an end wakes us
      sleepUntilNextDue(nowMs);
    } catch (error) {
      logger.error("delivery: reading due deliveries failed; retrying", {
        retryInMs: failureBackoffMs,
        error: errorMessage(error),
      });
      arm(failureBackoffMs);
    }
  }

  /** Records every finished attempt in one transaction, then lets their deliveries go. */
  function recordFinished(): void {
    if (finished.length === 0) return;
    const batch = finished;
    finished = [];
    let notPending: string[];
    try {
      notPending = deliveries.recordAttempts(batch.map((f) => f.record));
    } catch (error) {
      // Unrecorded, the deliveries are still pending: they will be sent again (at least
      // once). Parking them for a while keeps a failing store from turning into a tight
      // loop of requests to the receivers.
      logger.error("delivery: recording attempts failed; the deliveries will be retried", {
        deliveryIds: batch.map((f) => f.record.deliveryId),
        error: errorMessage(error),
      });
      if (closed) return; // their leases run out and they are sent again after a restart
      setTimeout(() => {
        for (const f of batch) if (!closed) returned.push(f.delivery);
        wake();
      }, failureBackoffMs).unref();
      return;
    }
    for (const { delivery, record } of batch) {
      held.delete(delivery.id);
      if (notPending.includes(delivery.id)) {
        logger.warn("delivery: attempt not recorded, the delivery was no longer pending", {
          deliveryId: delivery.id,
          attempt: record.attempt.attempt,
        });
      } else if (record.next.kind === "dead") {
        logger.warn("delivery: dead-lettered", {
          deliveryId: delivery.id,
          bus: delivery.bus,
          rule: delivery.rule,
          targetId: delivery.targetId,
          reason: record.next.reason,
        });
      }
    }
  }

  function sleepUntilNextDue(nowMs: number): void {
    // Everything due at nowMs was leased, so this is a retry's time or a lease's end.
    const nextMs = deliveries.nextDueAtMs();
    if (nextMs === undefined) return; // nothing pending: the dispatcher wakes us
    arm(Math.max(MIN_RECHECK_MS, nextMs - nowMs));
  }

  function arm(delayMs: number): void {
    if (closed) return;
    timer = setTimeout(pump, Math.min(delayMs, MAX_TIMER_MS));
    timer.unref();
  }

  function start(delivery: Delivery): void {
    held.add(delivery.id);
    const attempt = runAttempt(delivery)
      .then(
        (record) => {
          if (!abandoned) finished.push({ delivery, record });
        },
        (error: unknown) => {
          // A defect: nothing to record. Its lease runs out and it is sent again.
          held.delete(delivery.id);
          logger.error("delivery: an attempt failed unexpectedly", { deliveryId: delivery.id, error: errorMessage(error) });
        },
      )
      .finally(() => {
        running.delete(attempt);
        wake();
      });
    running.add(attempt);
  }

  async function runAttempt(delivery: Delivery): Promise<AttemptToRecord> {
    const number = delivery.attempts.length + 1;
    const startedAtMs = clock.nowMs();
    const timestamp = webhookTimestamp(startedAtMs);
    const headers: Record<string, string> = { ...delivery.request.headers, "webhook-timestamp": timestamp };
    const { body } = delivery.request;
    const signature = signer?.signature(delivery, headers["webhook-id"] ?? delivery.id, timestamp, body, startedAtMs);
    if (signature !== undefined) headers["webhook-signature"] = signature;
    const request = { ...delivery.request, headers };
    let result: SendResult;
    try {
      result = await sender.send(request);
    } catch (error) {
      // The sender reports network failures as results; this is a defect, but still an outcome.
      result = { error: errorMessage(error), errorKind: "connection", durationMs: clock.nowMs() - startedAtMs };
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
    const attempt: AttemptRecord = {
      attempt: number,
      startedAtMs,
      durationMs: result.durationMs,
      outcome: classified.outcome,
    };
    if (result.status !== undefined) attempt.status = result.status;
    if (classified.error !== undefined) attempt.error = classified.error;
    return { deliveryId: delivery.id, attempt, next };
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
      if (running.size > 0) {
        let bound: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => {
          bound = setTimeout(() => resolve("late"), closeTimeoutMs);
        });
        const outcome = await Promise.race([Promise.allSettled([...running]).then(() => "done" as const), late]);
        clearTimeout(bound);
        if (outcome === "late") {
          abandoned = true;
          // Their leases run out and they are sent again after a restart (at least once).
          logger.warn("delivery: attempts still in flight at close; they stay pending", { inFlight: running.size });
        }
      }
      // What ended by now is recorded; attempts ending later are not (they stay pending).
      recordFinished();
    },
  };
}

