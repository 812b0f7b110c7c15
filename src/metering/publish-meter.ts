/**
 * The publish meter: usage derived from the log. Like the archiver (delivery/archiver.ts)
 * it follows each bus's log from a checkpoint of its own, and stores what it counted (events
 * and 64 KB units per hour of receipt) with the new checkpoint in ONE transaction of the
 * state file: a crash loses both or neither, so after a restart it counts on from where the
 * last commit left it, never counting an event twice nor missing one.
 *
 * It must not slow ingest. It runs on the main thread, after the commits: a wake-up from the
 * log's appends starts a pass only after `delayMs`, so that the events of many group commits
 * are counted together; a pass sums a batch of events in SQL without reading their JSON
 * (`UsageStore.tallyPublished`) and yields to the event loop between batches.
 *
 * System buses are counted like any other: billing prices them at 0.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { errorMessage } from "../errors.js";
import type { LogEngine } from "../log/log-engine.js";
import { publishCheckpointName, type UsageStore } from "../log/usage-store.js";
import type { Logger } from "../types.js";

/** Events summed and committed per batch, by default. */
export const DEFAULT_PUBLISH_METER_BATCH = 4_000;
/** How long after a wake-up a pass starts, by default: appends of that time share a pass. */
export const DEFAULT_PUBLISH_METER_DELAY_MS = 1_000;

/** Options of {@link createPublishMeter}. */
export interface PublishMeterOptions {
  log: Pick<LogEngine, "onAppend">;
  usage: UsageStore;
  /** The buses to follow (every bus of the registry); read at start and on `catchUp`. */
  listBuses: () => readonly string[];
  logger: Logger;
  /** Events per batch. Default {@link DEFAULT_PUBLISH_METER_BATCH}. */
  batchSize?: number;
  /** Wait between a wake-up and its pass. Default {@link DEFAULT_PUBLISH_METER_DELAY_MS}. */
  delayMs?: number;
  /** Wait before retrying a bus after a storage failure. Default 1,000 ms. */
  failureBackoffMs?: number;
}

/** A running publish meter. */
export interface PublishMeter {
  /** Asks for a pass over `bus` after the delay (the log does this on every append). */
  wake(bus: string): void;
  /** Counts every bus up to the end of its log now; resolves when done. */
  catchUp(): Promise<void>;
  /** Stops taking wake-ups and waits for the batch in progress to commit. */
  close(): Promise<void>;
}

interface BusState {
  bus: string;
  running: Promise<void> | undefined;
  /** Woken while a pass ran: the pass goes on instead of stopping at a short batch. */
  again: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** Creates and starts a publish meter: it subscribes to the log's appends and counts every bus once. */
export function createPublishMeter(options: PublishMeterOptions): PublishMeter {
  const { log, usage, logger } = options;
  const batchSize = options.batchSize ?? DEFAULT_PUBLISH_METER_BATCH;
  const delayMs = options.delayMs ?? DEFAULT_PUBLISH_METER_DELAY_MS;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  const states = new Map<string, BusState>();
  let closed = false;

  function stateOf(bus: string): BusState {
    let state = states.get(bus);
    if (state === undefined) {
      state = { bus, running: undefined, again: false, timer: undefined };
      states.set(bus, state);
    }
    return state;
  }

  function wake(bus: string): void {
    if (closed) return;
    const state = stateOf(bus);
    if (state.running !== undefined) {
      state.again = true;
      return;
    }
    if (state.timer !== undefined) return; // a pass is due already
    schedule(state, delayMs);
  }

  function schedule(state: BusState, afterMs: number): void {
    state.timer = setTimeout(() => {
      state.timer = undefined;
      void start(state);
    }, afterMs);
    state.timer.unref();
  }

  function start(state: BusState): Promise<void> {
    if (state.timer !== undefined) {
      clearTimeout(state.timer);
      state.timer = undefined;
    }
    state.running ??= pass(state).finally(() => {
      state.running = undefined;
    });
    return state.running;
  }

  async function pass(state: BusState): Promise<void> {
    const name = publishCheckpointName(state.bus);
    while (!closed) {
      state.again = false;
      try {
        const tally = await usage.tallyPublished(state.bus, usage.meterCheckpoint(name), batchSize);
        if (tally.events > 0) usage.commitPublished(name, state.bus, tally);
        if (tally.events < batchSize && !state.again) return;
      } catch (error) {
        logger.error("metering: publish meter pass failed; retrying the bus", {
          bus: state.bus,
          retryInMs: failureBackoffMs,
          error: errorMessage(error),
        });
        if (!closed) schedule(state, failureBackoffMs);
        return;
      }
      await yieldToEventLoop();
    }
  }

  async function catchUp(): Promise<void> {
    for (const bus of options.listBuses()) stateOf(bus);
    await Promise.all(
      [...states.values()].map(async (state) => {
        // A pass in progress may have read its last batch before the newest appends.
        await state.running;
        if (!closed) await start(state);
      }),
    );
  }

  const unsubscribe = log.onAppend(wake);
  for (const bus of options.listBuses()) void start(stateOf(bus));

  return {
    wake,
    catchUp,
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const state of states.values()) {
        if (state.timer !== undefined) clearTimeout(state.timer);
        state.timer = undefined;
      }
      await Promise.all([...states.values()].map((s) => s.running));
    },
  };
}
