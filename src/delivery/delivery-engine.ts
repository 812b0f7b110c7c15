/**
 * The delivery engine: sends deliveries, one lane per target (see `delivery-lanes.ts`), and
 * records each attempt with what follows it (done, retry at a time, or dead letter).
 *
 * Deliveries reach it two ways:
 * - handed over by the dispatcher before they are stored ({@link DeliveryEngine.handOff}):
 *   the engine starts their first attempts at once, and the dispatcher stores each one as
 *   that attempt left it, in the same transaction as its checkpoint. A delivery that
 *   succeeds at once so costs one row insert: no pending row, no lease, no second write.
 *   This is the hot path.
 * - loaded from the store (retries that came due, redrives, replays, and whatever was
 *   pending when the process stopped), leased while held in memory.
 *
 * It holds no state of its own beyond what is queued or in flight, so a restart resumes
 * from the store alone: a delivery handed over but never stored is dispatched again (the
 * dispatcher's checkpoint did not move past it), one stored as held is due again once its
 * lease runs out. At least once, never lost.
 */
import { errorMessage } from "../errors.js";
import type {
  AttemptToRecord,
  Delivery,
  DeliveryStore,
  DispatchedDelivery,
  NewDelivery,
} from "../log/log-engine.js";
import type { Clock, Logger } from "../types.js";
import { createAttemptRunner } from "./attempt-runner.js";
import type { CircuitSnapshot } from "./circuit-breaker.js";
import type { RequestAuthorizer } from "./connection-authorizer.js";
import { DeliveryLanes, type Lane, type LaneLimits } from "./delivery-lanes.js";
import type { RandomSource } from "./retry-policy.js";
import type { TargetPacing } from "./router.js";
import { disabledDeadLetterReason, type TargetHealth } from "./target-health.js";
import { createTargetPacers, targetKey, type TargetAddress } from "./target-pacers.js";
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
  /**
   * The pacing of a target (rate and in-flight limits, circuit breaker, automatic disabling),
   * asked when its lane is made. Undefined: {@link DEFAULT_TARGET_MAX_IN_FLIGHT} in flight,
   * nothing else.
   */
  pacingOf?: (target: TargetAddress) => TargetPacing | undefined;
  /** Disables targets (410, failing too long) and says which are; without it none is. */
  health?: TargetHealth;
  /** Adds each target's connection (authorization, headers, query) to its attempts. */
  authorizer?: RequestAuthorizer;
}

export type { TargetAddress } from "./target-pacers.js";

/**
 * Deliveries handed over by the dispatcher, before they are stored: their first attempts
 * start at once.
 */
export interface HandOff {
  /** Resolves when every first attempt has ended, or after `windowMs`, whichever is first. */
  readonly settled: Promise<void>;
  /**
   * What to store for each delivery handed over, in the order given: its first attempt if
   * that ended, else "held until" (queued or in flight: the engine records its attempt
   * itself once stored), or plain due when the engine had no room for it. From this call
   * on, the engine takes the deliveries as stored; call it right before the commit.
   */
  seal(): DispatchedDelivery[];
}

/** A running delivery engine. */
export interface DeliveryEngine {
  /** Looks for due deliveries in the store now (after a redrive, a replay's batch...). */
  wake(): void;
  /** Takes deliveries not stored yet and starts their first attempts; see {@link HandOff}. */
  handOff(deliveries: readonly NewDelivery[], windowMs: number): HandOff;
  /**
   * Lets go of those of `ids` it holds queued (not in flight), and returns them with the
   * ones it does not hold at all: the deliveries no attempt of this engine is running for,
   * which the caller may take out of the store (to park them in a cluster). Call it and the
   * store's `take` in the same turn.
   */
  release(ids: readonly string[]): string[];
  /** Attempts in flight. */
  readonly inFlight: number;
  /** Deliveries queued in memory, waiting for their lane. */
  readonly queued: number;
  /** The live circuit of a target, for the status API; undefined when it has none. */
  circuitOf(target: TargetAddress, nowMs: number): CircuitSnapshot | undefined;
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
 * died (or stalled this long): then the delivery is due again, at least once. A delivery
 * queued in memory longer than its lease is handed out again by the store; the engine
 * knows it holds it and leaves it be.
 */
export const LEASE_MARGIN_MS = 30_000;
/** Deliveries one lane may queue in memory; more are left in the store, due. */
const MAX_QUEUED_PER_LANE = 4_096;
/** Deliveries all lanes together may queue in memory. */
const MAX_QUEUED = 16_384;
/**
 * Attempts of one target in flight at once unless its pacing says otherwise: a target
 * cannot take every slot of the engine, so one slow endpoint leaves room for the others.
 */
export const DEFAULT_TARGET_MAX_IN_FLIGHT = 64;

/** A delivery the engine holds: queued in its lane, in flight, or waiting to be recorded. */
interface Held {
  delivery: Delivery;
  lane: Lane<Held>;
  /** Set while its hand-off is not sealed: the attempt's record goes to the dispatcher. */
  handOff?: HandOffState;
  /** Its attempt's slot in the lane was given back (set per attempt). */
  slotFreed: boolean;
  /** Its current attempt is a half-open circuit's probe. */
  probe?: boolean;
}

/** How an attempt ended: sent (recorded as an attempt), or not sent because its target is disabled. */
type AttemptEnd = AttemptToRecord | NotSent;

interface NotSent {
  deliveryId: string;
  /** The dead-letter reason: `target disabled: ...`. */
  notSent: string;
}

interface HandOffState {
  sealed: boolean;
  /** First attempts not ended yet. */
  open: number;
  records: Map<string, AttemptEnd>;
  done: () => void;
}

/**
 * Creates and starts an engine.
 *
 * Scheduling: a pass ("pump") records the attempts that finished since the last one (one
 * transaction for all of them: a commit per attempt was most of the main thread's time),
 * loads due deliveries from the store when the lanes have room, and starts attempts, lanes
 * taking turns, until `maxInFlight` run. It then sleeps on one unref'd timer until the next
 * delivery is due or a lane may go again, or until a wake-up, a hand-off or the end of an
 * attempt triggers another pass; it never polls.
 *
 * An attempt itself (headers, signature, connection, send, outcome) is `attempt-runner.ts`;
 * rate limits, circuits and target health are `target-pacers.ts`.
 */
export function createDeliveryEngine(options: DeliveryEngineOptions): DeliveryEngine {
  const { deliveries, sender, clock, logger, maxInFlight } = options;
  const random = options.random ?? Math.random;
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  const signer = options.signer;
  const pacers = createTargetPacers(
    {
      ...(options.pacingOf === undefined ? {} : { pacingOf: options.pacingOf }),
      ...(options.health === undefined ? {} : { health: options.health }),
    },
    clock,
  );
  const attempts = createAttemptRunner({
    sender,
    clock,
    random,
    ...(signer === undefined ? {} : { signer }),
    ...(options.authorizer === undefined ? {} : { authorizer: options.authorizer }),
  });
  const lanes = new DeliveryLanes<Held>((key, nowMs) => pacers.gate(key, nowMs));

  /** Ids of deliveries held: queued, running, or waiting to be recorded. */
  const held = new Set<string>();
  const running = new Set<Promise<void>>();
  /** Attempts of stored deliveries that ended and wait for the next pump to record them. */
  let finished: Array<{ item: Held; record: AttemptToRecord }> = [];
  /**
   * The earliest time the store may have a delivery due that the engine does not hold:
   * asking it costs a transaction, so it is asked only from then on. A wake-up, a
   * rescheduled attempt or a failure brings it forward.
   */
  let storeDueAtMs = 0;
  let timer: NodeJS.Timeout | undefined;
  let pumpQueued = false;
  let closed = false;
  /** Set when close() gave up waiting: late results are then not recorded. */
  let abandoned = false;

  function wake(): void {
    storeDueAtMs = 0;
    queuePump();
  }

  function queuePump(): void {
    if (closed || pumpQueued) return;
    // Coalesce: a burst of wake-ups (one per finished attempt) makes one pass.
    pumpQueued = true;
    setImmediate(pump);
  }

  function laneOf(delivery: NewDelivery): Lane<Held> {
    const ordered = delivery.orderKey !== undefined;
    const key = delivery.orderKey ?? targetKey(delivery);
    return lanes.lane(key, (): LaneLimits => {
      const pacing = ordered ? undefined : pacers.pacingOf(delivery);
      const laneInFlight = Math.max(1, Math.min(maxInFlight, pacing?.maxInFlight ?? DEFAULT_TARGET_MAX_IN_FLIGHT));
      return { maxInFlight: laneInFlight, maxQueued: MAX_QUEUED_PER_LANE, ordered };
    });
  }

  function pump(): void {
    pumpQueued = false;
    if (closed) return;
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    recordFinished();
    startReady();
    const nowMs = clock.nowMs();
    if (storeDueAtMs <= nowMs && lanes.queued < maxInFlight) {
      try {
        loadDue(nowMs);
      } catch (error) {
        logger.error("delivery: reading due deliveries failed; retrying", {
          retryInMs: failureBackoffMs,
          error: errorMessage(error),
        });
        storeDueAtMs = nowMs + failureBackoffMs;
      }
      startReady();
    }
    sleep(nowMs);
  }

  /** Leases due deliveries from the store into their lanes. */
  function loadDue(nowMs: number): void {
    const limit = maxInFlight * 2 - lanes.queued - running.size;
    if (limit <= 0) return;
    const leased = deliveries.leaseDue(nowMs, limit, LEASE_MARGIN_MS);
    for (const delivery of leased) {
      // Held already: queued longer than its lease, or a stalled attempt. One at a time.
      if (held.has(delivery.id)) continue;
      const lane = laneOf(delivery);
      held.add(delivery.id);
      const item: Held = { delivery, lane, slotFreed: true };
      // The store hands out by due time; an ordered lane goes by log offset (a head that
      // waited for its retry comes due after the ones behind it).
      if (lane.limits.ordered) lanes.addInOrder(lane, item, (a, queued) => a.delivery.offset < queued.delivery.offset);
      else lanes.add(lane, item);
    }
    // Fewer than asked: nothing else is due now, so the next is a retry's time or a lease's end.
    storeDueAtMs = leased.length < limit ? (deliveries.nextDueAtMs() ?? Number.POSITIVE_INFINITY) : 0;
    if (storeDueAtMs <= nowMs && leased.length < limit) storeDueAtMs = nowMs + MIN_RECHECK_MS;
  }

  /** Starts attempts while there is room, lanes taking turns. */
  function startReady(): void {
    if (closed) return;
    const nowMs = clock.nowMs();
    while (running.size < maxInFlight) {
      const next = lanes.take(nowMs);
      if (next === undefined) return;
      next.item.probe = pacers.takeProbe(next.lane.key);
      start(next.item);
    }
  }

  function sleep(nowMs: number): void {
    if (closed || pumpQueued) return;
    const laneWake = lanes.nextWakeAtMs();
    const at = Math.min(storeDueAtMs, laneWake ?? Number.POSITIVE_INFINITY);
    if (at === Number.POSITIVE_INFINITY) return; // nothing to wait for: a wake-up comes
    arm(Math.max(at === storeDueAtMs ? MIN_RECHECK_MS : 1, at - nowMs));
  }

  function arm(delayMs: number): void {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(pump, Math.min(delayMs, MAX_TIMER_MS));
    timer.unref();
  }

  /** Records every finished attempt of stored deliveries in one transaction. */
  function recordFinished(): void {
    if (finished.length === 0) return;
    const batch = finished;
    finished = [];
    let notPending: string[];
    try {
      notPending = deliveries.recordAttempts(batch.map((f) => f.record));
    } catch (error) {
      // Unrecorded, the deliveries are still pending and leased: they are sent again once
      // their lease runs out (at least once). Letting them go now (rather than retrying in
      // memory) keeps a failing store from turning into a tight loop of requests.
      logger.error("delivery: recording attempts failed; the deliveries will be retried", {
        deliveryIds: batch.map((f) => f.record.deliveryId),
        error: errorMessage(error),
      });
      for (const { item } of batch) release(item);
      return;
    }
    for (const { item, record } of batch) afterRecorded(item, record, notPending.includes(item.delivery.id));
  }

  /** What follows a stored attempt, once recorded. */
  function afterRecorded(item: Held, record: AttemptToRecord, notPending: boolean): void {
    const { delivery } = item;
    if (notPending) {
      logger.warn("delivery: attempt not recorded, the delivery was no longer pending", {
        deliveryId: delivery.id,
        attempt: record.attempt.attempt,
      });
      release(item);
      return;
    }
    const { next } = record;
    if (next.kind === "dead") {
      logger.warn("delivery: dead-lettered", {
        deliveryId: delivery.id,
        bus: delivery.bus,
        rule: delivery.rule,
        targetId: delivery.targetId,
        reason: next.reason,
      });
    }
    if (next.kind === "retry") {
      storeDueAtMs = Math.min(storeDueAtMs, next.nextAttemptAtMs);
      if (item.lane.limits.ordered) {
        // The head of an ordered lane stays held and in front: nothing after it goes first.
        delivery.attempts.push(record.attempt);
        delivery.nextAttemptAtMs = next.nextAttemptAtMs;
        lanes.add(item.lane, item, true);
        lanes.block(item.lane, next.nextAttemptAtMs);
        freeSlot(item);
        return;
      }
    }
    release(item);
  }

  /** The delivery leaves the engine (done, dead, or back to the store to come due). */
  function release(item: Held): void {
    held.delete(item.delivery.id);
    freeSlot(item);
  }

  /**
   * Gives the attempt's slot back to its lane. At once when the attempt ends, except in an
   * ordered lane, whose slot is its order: it is given back once the attempt is recorded
   * and the head, if it is to be retried, is back in front.
   */
  function freeSlot(item: Held): void {
    if (item.slotFreed) return;
    item.slotFreed = true;
    lanes.finished(item.lane);
  }

  function start(item: Held): void {
    item.slotFreed = false;
    const attempt = runAttempt(item)
      .then(
        (record) => {
          if (abandoned) return;
          ended(item, record);
        },
        (error: unknown) => {
          // A defect: nothing to record. A stored delivery's lease runs out and it is sent
          // again; a handed-over one is stored due (its hand-off sees no record).
          logger.error("delivery: an attempt failed unexpectedly", {
            deliveryId: item.delivery.id,
            error: errorMessage(error),
          });
          if (item.handOff !== undefined && !item.handOff.sealed) closeFirstAttempt(item.handOff);
          release(item);
        },
      )
      .finally(() => {
        running.delete(attempt);
        queuePump();
      });
    running.add(attempt);
  }

  function ended(item: Held, record: AttemptEnd): void {
    if (!item.lane.limits.ordered) freeSlot(item);
    const handOff = item.handOff;
    if (handOff !== undefined && !handOff.sealed) {
      // Not stored yet: the dispatcher stores it as this attempt left it.
      handOff.records.set(item.delivery.id, record);
      closeFirstAttempt(handOff);
      return;
    }
    if ("notSent" in record) {
      deadLetterStored(item, record.notSent);
      return;
    }
    finished.push({ item, record });
  }

  /** A stored delivery of a disabled target goes to the dead letters without an attempt. */
  function deadLetterStored(item: Held, reason: string): void {
    try {
      deliveries.deadLetter(item.delivery, reason);
    } catch (error) {
      // Still pending and leased: tried again once the lease runs out.
      logger.error("delivery: dead-lettering a disabled target's delivery failed", {
        deliveryId: item.delivery.id,
        error: errorMessage(error),
      });
    }
    release(item);
  }

  function closeFirstAttempt(handOff: HandOffState): void {
    handOff.open--;
    if (handOff.open === 0) handOff.done();
  }

  function handOff(list: readonly NewDelivery[], windowMs: number): HandOff {
    let done!: () => void;
    const settledByAttempts = new Promise<void>((resolve) => (done = resolve));
    const state: HandOffState = { sealed: false, open: 0, records: new Map(), done };
    const accepted: Held[] = [];
    const taken = new Set<string>();
    for (const newDelivery of list) {
      if (closed || held.has(newDelivery.id)) continue;
      const lane = laneOf(newDelivery);
      // Stored due instead, and loaded when there is room.
      if (lanes.isFull(lane) || lanes.queued >= MAX_QUEUED) continue;
      const delivery = heldDelivery(newDelivery);
      const item: Held = { delivery, lane, handOff: state, slotFreed: true };
      held.add(delivery.id);
      taken.add(delivery.id);
      lanes.add(lane, item);
      accepted.push(item);
    }
    state.open = accepted.length;
    if (state.open === 0) done();
    else startReady();

    let windowTimer: NodeJS.Timeout | undefined;
    const settled =
      state.open === 0
        ? settledByAttempts
        : Promise.race([
            settledByAttempts,
            new Promise<void>((resolve) => {
              windowTimer = setTimeout(resolve, windowMs);
              windowTimer.unref();
            }),
          ]).finally(() => clearTimeout(windowTimer));

    return {
      settled,
      seal() {
        state.sealed = true;
        clearTimeout(windowTimer);
        const nowMs = clock.nowMs();
        const out: DispatchedDelivery[] = [];
        for (const delivery of list) {
          if (!taken.has(delivery.id)) {
            out.push({ delivery });
            continue;
          }
          const record = state.records.get(delivery.id);
          if (record === undefined) {
            // Queued or in flight: stored leased; its attempt is recorded like any other.
            out.push({ delivery, heldUntilMs: nowMs + delivery.request.timeoutMs + LEASE_MARGIN_MS });
            continue;
          }
          if ("notSent" in record) {
            out.push({ delivery, deadReason: record.notSent });
            continue;
          }
          out.push({ delivery, first: { attempt: record.attempt, next: record.next } });
          if (record.next.kind === "retry") storeDueAtMs = Math.min(storeDueAtMs, record.next.nextAttemptAtMs);
        }
        for (const item of accepted) {
          item.handOff = undefined;
          if (state.records.has(item.delivery.id)) held.delete(item.delivery.id);
        }
        if (accepted.length < list.length) storeDueAtMs = 0; // refused ones are due at once
        queuePump();
        return out;
      },
    };
  }

  async function runAttempt(item: Held): Promise<AttemptEnd> {
    const { delivery } = item;
    const disabled = pacers.disabledReason(delivery);
    if (disabled !== undefined) {
      if (item.probe === true) pacers.returnProbe(item.lane.key, clock.nowMs());
      return { deliveryId: delivery.id, notSent: disabledDeadLetterReason(disabled) };
    }
    const record = await attempts.run(delivery);
    const { outcome, status } = record.attempt;
    const probe = item.probe === true;
    const paced = item.lane.limits.ordered
      ? false
      : pacers.afterAttempt(item.lane.key, delivery, { outcome, status, probe }, clock.nowMs());
    // The lane may be waiting on the circuit as it was before this attempt (a probe out).
    if (paced) lanes.recheck(item.lane);
    return record;
  }

  wake(); // pending deliveries from before a restart

  return {
    wake,
    handOff,
    release(ids) {
      const wanted = new Set(ids.filter((id) => held.has(id)));
      const removed = wanted.size === 0 ? [] : lanes.remove((item) => wanted.has(item.delivery.id));
      for (const item of removed) held.delete(item.delivery.id);
      const stillHeld = new Set(ids.filter((id) => held.has(id)));
      return ids.filter((id) => !stillHeld.has(id));
    },
    get inFlight() {
      return running.size;
    },
    get queued() {
      return lanes.queued;
    },
    circuitOf: (target, nowMs) => pacers.circuitOf(target, nowMs),
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      // Queued deliveries are stored (leased or due): they go out after a restart.
      for (const item of lanes.drain()) held.delete(item.delivery.id);
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

/**
 * A handed-over delivery as the engine holds it: not attempted yet, due at once. Built field
 * by field rather than spread: a spread copy took V8's slow path (a map migration per
 * delivery), and so did every read of the copy's fields afterwards. A field added to
 * NewDelivery must be added here (and in `withRequest`, build-request.ts).
 */
function heldDelivery(d: NewDelivery): Delivery {
  const delivery: Delivery = {
    id: d.id,
    bus: d.bus,
    offset: d.offset,
    eventId: d.eventId,
    rule: d.rule,
    targetId: d.targetId,
    retry: d.retry,
    eventReceivedAtMs: d.eventReceivedAtMs,
    createdAtMs: d.createdAtMs,
    request: d.request,
    bodyIsEvent: d.bodyIsEvent === true,
    attempts: [],
    nextAttemptAtMs: d.createdAtMs,
  };
  if (d.orderKey !== undefined) delivery.orderKey = d.orderKey;
  return delivery;
}
