/**
 * The dispatcher: from the log to durably pending deliveries (shared/DESIGN.md section 2,
 * step 3). Per bus it reads the events after its checkpoint, routes each through the rules,
 * builds each delivery's request (evaluating transforms), and records the deliveries and the
 * new checkpoint in one transaction per batch, so the checkpoint never passes an event whose
 * deliveries are not durably pending (or dead-lettered).
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { errorMessage } from "../errors.js";
import type {
  DeliveryStore,
  DispatchedDelivery,
  LogEngine,
  NewDelivery,
} from "../log/log-engine.js";
import type { Clock, Logger } from "../types.js";
import { createBatchBuilder } from "./batch-builder.js";
import type { DeliveryEngine, HandOff } from "./delivery-engine.js";
import type { FormatOptions } from "./format-payload.js";
import type { Router } from "./router.js";

/**
 * Events read and committed per batch by default. Reading, routing and building a batch, and
 * committing it, each run in one stretch of the main thread, during which no result of an
 * attempt is taken and no new attempt starts: with 500, stretches of 5-30 ms let one target's
 * 64 attempts in flight drain and the sender thread idle. 100 keeps them near a millisecond;
 * with the sender threads' chunked messages that took one fast target from ~16,000 to
 * ~18,500 deliveries/s on a quiet machine (bench/deliver.ts), at about the same CPU per
 * delivery (a commit per 100 rows instead of 500 costs little next to the rows). 50 cost
 * more CPU for no more speed.
 */
export const DEFAULT_DISPATCH_BATCH_SIZE = 100;
/** How long a batch's commit waits for the first attempts of its deliveries, by default. */
export const DEFAULT_HAND_OFF_WINDOW_MS = 1_000;
/** Batches of one bus handed to the engine and not yet committed, at most. */
const MAX_BATCHES_IN_FLIGHT = 8;
/**
 * Deliveries the engine may hold queued (handed over, not started) before the dispatcher
 * stops reading ahead, in batches: it waits for its oldest commit instead. Reading further
 * ahead than the targets take in a hand-off window only makes deliveries miss the window,
 * and a delivery stored unfinished costs about five row writes where a finished one costs
 * one; under load that turned into a spiral (the slower the main thread, the more missed).
 */
const MAX_QUEUED_AHEAD_BATCHES = 2;
/**
 * How long a pass reads on through a backlog (full batches) before it yields to the event
 * loop. Yielding after every batch capped a pass at one batch per turn of the loop. Under
 * ingest load a turn takes in far more (64 requests of 10 events), and a batch that makes no
 * deliveries costs microseconds, so the dispatcher of a bus whose rules match few of its
 * events fell behind the log's in-memory tail and read every event back from SQLite: 12% of
 * the main thread in the ingest benchmark. A batch that makes deliveries takes about this
 * long by itself. After a short batch the pass still yields at once, so that the appends of
 * that turn are read as one batch rather than a few events at a time.
 */
const BACKLOG_YIELD_AFTER_MS = 1;

/** Options of {@link createDispatcher}. */
export interface DispatcherOptions {
  log: LogEngine;
  deliveries: DeliveryStore;
  router: Router;
  /** The buses to catch up on at start; buses that get events later are woken by the log. */
  listBuses(): string[];
  /**
   * Takes each batch's deliveries before they are stored and tries them first (see
   * `DeliveryEngine.handOff`). Optional for dispatch-only tests: without it deliveries are
   * stored due. Its `queued`, when given, bounds how far the dispatcher reads ahead.
   */
  engine?: Pick<DeliveryEngine, "handOff"> & Partial<Pick<DeliveryEngine, "queued">>;
  /**
   * How long a batch's commit waits for its first attempts before storing the unfinished
   * ones as held. Default {@link DEFAULT_HAND_OFF_WINDOW_MS}. Longer: more deliveries
   * stored already finished (cheaper), more sent again after a crash.
   */
  handOffWindowMs?: number;
  clock: Clock;
  logger: Logger;
  /** Budget of one transform evaluation (`transform.timeoutMs`, default 100 ms). */
  transformTimeoutMs: number;
  /**
   * Events per read and per commit. Default {@link DEFAULT_DISPATCH_BATCH_SIZE}. Larger
   * batches mean fewer transactions (throughput) but a longer wait before the first
   * delivery of a burst is pending (latency).
   */
  batchSize?: number;
  /** Settings of the AWS envelope. Default {@link DEFAULT_FORMAT_OPTIONS}. */
  format?: FormatOptions;
  /** Wait before retrying a bus after a storage or routing failure. Default 1,000 ms. */
  failureBackoffMs?: number;
}

/** A running dispatcher. */
export interface Dispatcher {
  /** Asks for a pass over `bus` (the log does this on every append). */
  wake(bus: string): void;
  /** Resolves once no bus has a pass running (every event appended so far is handed over). */
  whenIdle(): Promise<void>;
  /** Stops taking wake-ups and waits for the batches in progress to commit. */
  close(): Promise<void>;
}

interface BusState {
  running: Promise<void> | undefined;
  /** An append arrived during the current pass: read again before stopping. */
  again: boolean;
  retryTimer: NodeJS.Timeout | undefined;
}

/**
 * Creates and starts a dispatcher: it subscribes to the log's appends and catches up on
 * every bus of `listBuses()` at once.
 *
 * One pass per bus runs at a time (events of a bus are handed over in order; buses proceed
 * independently). A transform that fails or runs over its budget, or an event that its
 * target's format cannot carry, dead-letters that one delivery with the reason; the other
 * deliveries of the event go on. A failure of storage or of the router stops the bus's pass
 * and retries it after `failureBackoffMs`: nothing is skipped, at the cost of that bus
 * waiting until the cause goes away (it is logged as an error each time).
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { log, deliveries, logger } = options;
  const batchSize = options.batchSize ?? DEFAULT_DISPATCH_BATCH_SIZE;
  const buildBatch = createBatchBuilder(options);
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  const handOffWindowMs = options.handOffWindowMs ?? DEFAULT_HAND_OFF_WINDOW_MS;
  const maxQueuedAhead = batchSize * MAX_QUEUED_AHEAD_BATCHES;
  // A transform that never settles (it should reject at its budget) must not stall its bus;
  // the margin leaves the transform's own, more precise, error to win in the normal case.
  const buses = new Map<string, BusState>();
  let closed = false;

  function wake(bus: string): void {
    if (closed) return;
    let state = buses.get(bus);
    if (state === undefined) {
      state = { running: undefined, again: false, retryTimer: undefined };
      buses.set(bus, state);
    }
    if (state.running !== undefined) {
      state.again = true;
      return;
    }
    if (state.retryTimer !== undefined) {
      clearTimeout(state.retryTimer);
      state.retryTimer = undefined;
    }
    const current = state;
    current.running = pass(bus, current).finally(() => {
      current.running = undefined;
    });
  }

  /**
   * One pass over a bus: read, route and build a batch, hand its deliveries to the engine,
   * and go on with the next batch while the engine sends; each batch is committed once its
   * first attempts ended (or the hand-off window passed), in log order, at most
   * {@link MAX_BATCHES_IN_FLIGHT} behind the reading. A failed commit fails the pass, which
   * starts again from the stored checkpoint: what was sent but not stored is sent again.
   */
  async function pass(bus: string, state: BusState): Promise<void> {
    let afterOffset = deliveries.checkpoint(bus);
    let chain: Promise<void> = Promise.resolve();
    const outstanding: Promise<void>[] = [];
    let failure: { error: unknown } | undefined;
    let yieldedAtMs = performance.now();
    let backlog = false;
    while (!closed) {
      state.again = false;
      try {
        const events = await log.read(bus, afterOffset, batchSize);
        backlog = events.length === batchSize;
        if (events.length > 0) {
          const through = events[events.length - 1]!.offset;
          afterOffset = through;
          chain = commitInOrder(chain, bus, through, await buildBatch(bus, events));
          outstanding.push(chain.catch((error: unknown) => void (failure ??= { error })));
          if (outstanding.length >= MAX_BATCHES_IN_FLIGHT) await outstanding.shift();
          while (outstanding.length > 0 && (options.engine?.queued ?? 0) >= maxQueuedAhead)
            await outstanding.shift();
          if (failure !== undefined) throw failure.error;
        }
        if (events.length < batchSize && !state.again) {
          await Promise.all(outstanding);
          if (failure !== undefined) throw failure.error;
          // An append may have woken the bus while its last commits were awaited.
          if (!state.again) return;
        }
      } catch (error) {
        await Promise.all(outstanding);
        logger.error("dispatch: pass failed; retrying the bus", {
          bus,
          retryInMs: failureBackoffMs,
          error: error instanceof Error ? error.message : String(error),
        });
        if (!closed) {
          state.retryTimer = setTimeout(() => {
            state.retryTimer = undefined;
            wake(bus);
          }, failureBackoffMs);
          state.retryTimer.unref();
        }
        return;
      }
      // Reads of an embedded log may resolve without ever leaving the microtask queue; a
      // backlog of a million events must still let HTTP requests and timers run.
      if (!backlog || performance.now() - yieldedAtMs >= BACKLOG_YIELD_AFTER_MS) {
        await yieldToEventLoop();
        yieldedAtMs = performance.now();
      }
    }
    // Closing: what was handed over is committed before the storage closes.
    await Promise.all(outstanding);
  }

  /**
   * Hands `built` to the engine now and commits it after `previous`, once its first attempts
   * ended or the window passed. The hand-off is sealed even when an earlier commit failed,
   * so the engine lets go of what ended (the pass re-dispatches it).
   */
  function commitInOrder(
    previous: Promise<void>,
    bus: string,
    through: number,
    built: NewDelivery[],
  ): Promise<void> {
    const handOff: HandOff | undefined =
      built.length > 0 && options.engine !== undefined
        ? options.engine.handOff(built, handOffWindowMs)
        : undefined;
    return previous.then(
      async () => {
        if (handOff !== undefined) await handOff.settled;
        const dispatched: DispatchedDelivery[] =
          handOff?.seal() ?? built.map((delivery) => ({ delivery }));
        deliveries.commitDispatched(bus, through, dispatched);
      },
      async (error: unknown) => {
        if (handOff !== undefined) {
          await handOff.settled;
          handOff.seal();
        }
        throw error;
      },
    );
  }

  async function whenIdle(): Promise<void> {
    for (;;) {
      const running = [...buses.values()].map((s) => s.running).filter((p) => p !== undefined);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  const unsubscribe = log.onAppend(wake);
  let known: string[] = [];
  try {
    known = options.listBuses();
  } catch (error) {
    logger.error("dispatch: could not list buses to catch up on", { error: errorMessage(error) });
  }
  for (const bus of known) wake(bus);

  return {
    wake,
    whenIdle,
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const state of buses.values()) {
        if (state.retryTimer !== undefined) clearTimeout(state.retryTimer);
        state.retryTimer = undefined;
      }
      await Promise.all([...buses.values()].map((s) => s.running));
    },
  };
}
