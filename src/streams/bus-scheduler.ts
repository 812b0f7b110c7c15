/**
 * The bus scheduler: schedules that publish an event to a bus each time they fire, as
 * EventBridge Scheduler does with a PutEvents target. Each schedule runs the schedule source
 * connector (connectors/schedule) with the position the store saved for it; each batch of
 * fires is published through the Relaybus port, then its position is recorded. Publish first,
 * record second: a crash between the two publishes those fires again on restart, with the
 * same ids (at least once). A publish that fails is retried with backoff until it succeeds or
 * the schedule stops; the failure shows in `status()` and the log.
 */
import type { RelaybusPort, SourceBatch } from "../../connectors/index.js";
import { parseScheduleExpression, scheduleSource } from "../../connectors/schedule/index.js";
import type { ScheduleStore } from "../log/schedule-store.js";
import type { Clock, Logger } from "../types.js";
import type { BusSchedule } from "./schedule-model.js";
import { abortableSleep } from "./abortable-sleep.js";

/** Default first delay before a failed publish or run is tried again (ms). */
export const DEFAULT_SCHEDULE_RETRY_INITIAL_DELAY_MS = 1_000;
/** Default longest delay between tries (ms); delays double up to it. */
export const DEFAULT_SCHEDULE_RETRY_MAX_DELAY_MS = 60_000;
/** Most fires published in one batch, when several are due at once. */
const MAX_FIRES_PER_BATCH = 100;

/** What the scheduler needs. */
export interface BusSchedulerDeps {
  relaybus: RelaybusPort;
  store: ScheduleStore;
  /** When schedules fire. Tests pass a manual clock. */
  clock: Clock;
  logger: Logger;
  /** Backoff of failed publishes and runs; delays double from the first to the longest. */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
}

/** How one schedule is doing. */
export interface BusScheduleStatus {
  name: string;
  bus: string;
  expression: string;
  timezone: string;
  enabled: boolean;
  /** The first fire after now (ISO 8601); absent when disabled or when it will not fire again. */
  nextFireAt?: string;
  /** The last fire published (ISO 8601); absent when it never fired. */
  lastFiredAt?: string;
  /** The last failure to publish or to run, kept after later successes (compare with `lastFiredAt`). */
  lastError?: { message: string; at: string };
}

/** Runs a set of schedules. */
export interface BusScheduler {
  /**
   * Replaces the set. Schedules whose definition is unchanged keep running untouched; changed
   * ones restart from their saved position; removed or disabled ones stop, and their position
   * is dropped, so that coming back they start afresh rather than catch up. Throws, changing
   * nothing, when a name repeats or an expression or time zone is invalid (the message names
   * the schedule), or after `close()`.
   */
  set(schedules: readonly BusSchedule[]): void;
  /** Every schedule of the set, by name. */
  status(): BusScheduleStatus[];
  /** Stops every schedule; resolves once none runs. Idempotent. */
  close(): Promise<void>;
}

interface Entry {
  schedule: BusSchedule;
  /** The definition with its defaults, as JSON: equal keys mean an unchanged schedule. */
  key: string;
  abort: AbortController;
  /** Settles once this entry no longer runs (and its position was dropped, if it had to be). */
  settled: Promise<void>;
  /** When its current run started, ms; a rate without a saved position is anchored there. */
  startedAtMs?: number;
  lastError?: { message: string; atMs: number };
}

function keyOf(schedule: BusSchedule): string {
  const {
    name,
    expression,
    timezone = "UTC",
    missedRuns = "skip",
    bus,
    event,
    enabled = true,
  } = schedule;
  return JSON.stringify({ name, expression, timezone, missedRuns, bus, event, enabled });
}

/** Creates the scheduler, with no schedule yet. */
export function createBusScheduler(deps: BusSchedulerDeps): BusScheduler {
  const { relaybus, store, clock, logger } = deps;
  const initialDelayMs = deps.retry?.initialDelayMs ?? DEFAULT_SCHEDULE_RETRY_INITIAL_DELAY_MS;
  const maxDelayMs = deps.retry?.maxDelayMs ?? DEFAULT_SCHEDULE_RETRY_MAX_DELAY_MS;
  const entries = new Map<string, Entry>();
  /** Per name, what a new entry of that name waits for: the last one's end. */
  const tails = new Map<string, Promise<void>>();
  let closed = false;

  const backoffMs = (attempt: number) =>
    Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30));

  function fail(entry: Entry, what: string, error: unknown, attempt: number): void {
    const message = error instanceof Error ? error.message : String(error);
    entry.lastError = { message, atMs: clock.nowMs() };
    logger.warn(`schedule ${what} failed; trying again`, {
      schedule: entry.schedule.name,
      bus: entry.schedule.bus,
      error: message,
      retryInMs: backoffMs(attempt),
    });
  }

  /** Publishes a batch until it is on the bus, then records its position. Rejects only when stopped. */
  async function publish(entry: Entry, batch: SourceBatch, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await relaybus.publish(entry.schedule.bus, batch.events);
        break;
      } catch (error) {
        if (signal.aborted) throw error;
        fail(entry, "publish", error, attempt);
        await abortableSleep(backoffMs(attempt), signal);
        if (signal.aborted) throw error;
      }
    }
    if (batch.position !== undefined)
      store.recordFired(entry.schedule.name, batch.position, clock.nowMs());
  }

  /** Runs the schedule source until the entry stops; a run that fails starts again after a backoff. */
  async function run(entry: Entry): Promise<void> {
    const { schedule, abort } = entry;
    const { signal } = abort;
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        entry.startedAtMs = clock.nowMs();
        const source = scheduleSource.create(
          {
            expression: schedule.expression,
            timezone: schedule.timezone,
            missedRuns: schedule.missedRuns,
            event: schedule.event,
          },
          {
            logger,
            clock,
            signal,
            streamName: schedule.name,
            relaybus,
            position: store.lastFired(schedule.name),
            maxBatchEvents: MAX_FIRES_PER_BATCH,
            maxBatchWaitMs: 0,
          },
        );
        logger.info("schedule started", {
          schedule: schedule.name,
          bus: schedule.bus,
          expression: schedule.expression,
        });
        try {
          await source.run((batch) => publish(entry, batch, signal));
        } finally {
          await source.close();
        }
        return;
      } catch (error) {
        if (signal.aborted) return;
        fail(entry, "run", error, attempt);
        await abortableSleep(backoffMs(attempt), signal);
      }
    }
  }

  /** Makes the entry for `schedule` and starts it once the previous entry of its name ended. */
  function start(schedule: BusSchedule): Entry {
    const previous = tails.get(schedule.name) ?? Promise.resolve();
    const entry: Entry = {
      schedule,
      key: keyOf(schedule),
      abort: new AbortController(),
      settled: Promise.resolve(),
    };
    const enabled = schedule.enabled ?? true;
    entry.settled = previous.then(async () => {
      if (!enabled) store.forget(schedule.name);
      else if (!entry.abort.signal.aborted) await run(entry);
    });
    entry.settled = entry.settled.catch((error: unknown) => {
      logger.error("schedule stopped on an error", {
        schedule: schedule.name,
        error: String(error),
      });
    });
    track(schedule.name, entry.settled);
    return entry;
  }

  /** Stops the entry; `forget` drops its position once it no longer runs. */
  function stop(entry: Entry, forget: boolean): void {
    entry.abort.abort();
    if (!forget) return;
    const name = entry.schedule.name;
    const forgotten = entry.settled.then(() => {
      try {
        store.forget(name);
      } catch (error) {
        logger.error("schedule position could not be dropped", {
          schedule: name,
          error: String(error),
        });
      }
    });
    track(name, forgotten);
  }

  function track(name: string, settled: Promise<void>): void {
    tails.set(name, settled);
    void settled.then(() => {
      if (tails.get(name) === settled) tails.delete(name);
    });
  }

  function check(schedules: readonly BusSchedule[]): void {
    const seen = new Set<string>();
    for (const schedule of schedules) {
      if (seen.has(schedule.name))
        throw new Error(`schedule ${JSON.stringify(schedule.name)} is defined twice`);
      seen.add(schedule.name);
      try {
        parseScheduleExpression(schedule.expression, schedule.timezone);
      } catch (error) {
        throw new Error(`schedule ${JSON.stringify(schedule.name)}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
  }

  return {
    set(schedules) {
      if (closed) throw new Error("the bus scheduler is closed");
      check(schedules);
      const wanted = new Map(schedules.map((s) => [s.name, s]));
      for (const [name, entry] of entries) {
        const next = wanted.get(name);
        if (next !== undefined && keyOf(next) === entry.key) continue;
        entries.delete(name);
        stop(entry, next === undefined);
      }
      for (const schedule of schedules) {
        if (!entries.has(schedule.name)) entries.set(schedule.name, start(schedule));
      }
    },
    status() {
      const nowMs = clock.nowMs();
      return [...entries.values()]
        .map(({ schedule, startedAtMs, lastError }): BusScheduleStatus => {
          const enabled = schedule.enabled ?? true;
          const timezone = schedule.timezone ?? "UTC";
          const lastFiredAt = store.lastFired(schedule.name);
          const lastFiredMs = lastFiredAt === undefined ? undefined : Date.parse(lastFiredAt);
          const status: BusScheduleStatus = {
            name: schedule.name,
            bus: schedule.bus,
            expression: schedule.expression,
            timezone,
            enabled,
          };
          if (enabled) {
            // Anchored as the source anchors a rate: at the last fire, else at the run's start.
            const anchorMs = lastFiredMs ?? startedAtMs ?? nowMs;
            const next = parseScheduleExpression(schedule.expression, timezone, {
              anchorMs,
            }).nextAfter(Math.max(nowMs, lastFiredMs ?? -Infinity));
            if (next !== undefined) status.nextFireAt = new Date(next).toISOString();
          }
          if (lastFiredAt !== undefined) status.lastFiredAt = lastFiredAt;
          if (lastError !== undefined)
            status.lastError = {
              message: lastError.message,
              at: new Date(lastError.atMs).toISOString(),
            };
          return status;
        })
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async close() {
      closed = true;
      for (const entry of entries.values()) entry.abort.abort();
      entries.clear();
      while (tails.size > 0) await Promise.allSettled([...tails.values()]);
    },
  };
}

