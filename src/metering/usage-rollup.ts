/**
 * The daily rollup: sums each day's hourly usage into its daily rows. A day is rolled in one
 * transaction that replaces its daily rows with the sums of its hourly rows, so rolling it
 * again gives the same rows: a rerun, or a run after a crash in the middle, never counts
 * twice. Each run rolls today and yesterday (UTC) and every older day a count landed in
 * since the last complete run (the publish meter catching up on old events, say); the mark
 * of those days is cleared only once they are all rolled.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { DAY_MS, dayOf, type UsageStore } from "../log/usage-store.js";
import type { Clock } from "../types.js";

/** What one rollup run did. */
export interface RollupResult {
  /** The first and last day rolled, UTC midnights in ms. */
  fromDayMs: number;
  toDayMs: number;
  days: number;
  /** Daily rows written. */
  rows: number;
}

/** Options of {@link createUsageRollup}. */
export interface UsageRollupOptions {
  usage: UsageStore;
  clock: Clock;
}

/** Rolls hourly usage into days. Runs are serialized: a run asked for during one follows it. */
export interface UsageRollup {
  /** Rolls today, yesterday and the days touched since the last run. */
  run(): Promise<RollupResult>;
  /** Rolls every day from the day of `fromMs` through the day of `toMs`, both included. */
  rollUpRange(fromMs: number, toMs: number): Promise<RollupResult>;
}

/** Creates the rollup. It holds no resources: the service schedules `run`. */
export function createUsageRollup(options: UsageRollupOptions): UsageRollup {
  const { usage, clock } = options;
  let last: Promise<unknown> = Promise.resolve();

  /** Runs `work` after the runs before it, whether they failed or not. */
  function serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = last.then(work, work);
    last = next.catch(() => undefined);
    return next;
  }

  async function rollDays(fromDayMs: number, toDayMs: number): Promise<RollupResult> {
    let rows = 0;
    let days = 0;
    for (let day = fromDayMs; day <= toDayMs; day += DAY_MS) {
      rows += usage.rollUpDay(day);
      days++;
      await yieldToEventLoop();
    }
    return { fromDayMs, toDayMs, days, rows };
  }

  return {
    run: () =>
      serialized(async () => {
        const today = dayOf(clock.nowMs());
        const pending = usage.pendingRollup();
        const from = Math.min(today - DAY_MS, pending?.fromDayMs ?? today);
        const result = await rollDays(from, today);
        if (pending !== undefined) usage.markRolledUp(pending.version);
        return result;
      }),
    rollUpRange: (fromMs, toMs) => serialized(() => rollDays(dayOf(fromMs), dayOf(toMs))),
  };
}
