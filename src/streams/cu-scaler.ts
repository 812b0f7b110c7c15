/**
 * The CU scaler of one stream: looks once per `streams.scaleIntervalMs` at what the last
 * interval was like and says whether capacity should change.
 *
 * - **Up, one CU**, when the quota held the stream back (throttled for at least half the
 *   interval) and work is waiting (the source reports a backlog, or cannot tell); or when the
 *   backlog is more than the current quota drains in one interval and the quota held the
 *   stream back at all (10% of the interval). Growing one
 *   CU per look keeps each step visible and billed as it happens; a backlog that outgrows it
 *   keeps the stream throttled, so the next look grows it again.
 * - **Down, one CU**, after `scaleDownAfterIntervals` looks in a row where the stream was
 *   hardly throttled and what it carried would have fitted in one CU less with room to spare
 *   (70% of it), and no backlog waits. Several quiet looks in a row, not one, so that a
 *   bursty source does not make the capacity flap.
 * - Never outside `[minCU, maxCU]`.
 *
 * Pure apart from its count of quiet looks: the runner measures, this decides.
 */
import type { CuRates } from "./cu-quota.js";

/** One interval, as the runner measured it. */
export interface ScaleWindow {
  /** The interval's length, ms. */
  windowMs: number;
  /** Time the quota held batches back in it, ms. */
  throttledMs: number;
  /** Events and bytes the stream carried in it. */
  events: number;
  bytes: number;
  /** Events waiting at the source (and in the stream), when known. */
  backlog: number | undefined;
}

/** A decision to change capacity. */
export interface ScaleDecision {
  toCU: number;
  /** Why, for the capacity history: "throttled 93% of the last 10 s, backlog 12,000 events". */
  reason: string;
}

/** Throttled at least this share of an interval counts as held back. */
const THROTTLED_SHARE_UP = 0.5;
/** With a backlog deeper than one interval at the current quota, throttled this share suffices. */
const THROTTLED_SHARE_DEEP_BACKLOG = 0.1;
/** Throttled at most this share of an interval counts as quiet. */
const THROTTLED_SHARE_QUIET = 0.05;
/** What was carried must fit in this share of one CU less for a look to count as quiet. */
const HEADROOM_DOWN = 0.7;

export interface CuScalerOptions {
  minCU: number;
  maxCU: number;
  perCU: CuRates;
  /** Quiet looks in a row before one CU is given back. */
  scaleDownAfterIntervals: number;
}

export class CuScaler {
  readonly #options: CuScalerOptions;
  #quietLooks = 0;

  constructor(options: CuScalerOptions) {
    this.#options = options;
  }

  /** Decides from the last interval at `cu` CUs; undefined to stay. */
  observe(cu: number, window: ScaleWindow): ScaleDecision | undefined {
    const { minCU, maxCU, perCU, scaleDownAfterIntervals } = this.#options;
    if (cu < minCU) return { toCU: minCU, reason: `below the minimum of ${minCU} CU` };
    if (cu > maxCU) return { toCU: maxCU, reason: `above the maximum of ${maxCU} CU` };
    if (window.windowMs <= 0) return undefined;
    const throttledShare = Math.min(1, window.throttledMs / window.windowMs);
    const seconds = window.windowMs / 1000;
    const describe = () =>
      `throttled ${Math.round(throttledShare * 100)}% of the last ${formatSeconds(seconds)}` +
      (window.backlog === undefined ? "" : `, backlog ${window.backlog.toLocaleString("en-US")} events`);

    const waiting = window.backlog === undefined || window.backlog > 0;
    // A backlog the current quota cannot drain within one look is reason enough once the
    // quota holds the stream back at all: a machine only a little faster than the quota is
    // throttled a small share of the time, yet the backlog keeps waiting.
    const deepBacklog =
      window.backlog !== undefined && window.backlog > cu * perCU.eventsPerSecond * seconds && throttledShare >= THROTTLED_SHARE_DEEP_BACKLOG;
    if ((throttledShare >= THROTTLED_SHARE_UP && waiting) || deepBacklog) {
      this.#quietLooks = 0;
      return cu < maxCU ? { toCU: cu + 1, reason: describe() } : undefined;
    }
    const fitsInLess =
      cu > minCU &&
      window.events / seconds <= HEADROOM_DOWN * (cu - 1) * perCU.eventsPerSecond &&
      window.bytes / seconds <= HEADROOM_DOWN * (cu - 1) * perCU.bytesPerSecond;
    const idle = (window.backlog ?? 0) === 0 || window.events === 0;
    if (throttledShare <= THROTTLED_SHARE_QUIET && fitsInLess && idle) {
      this.#quietLooks++;
      if (this.#quietLooks >= scaleDownAfterIntervals) {
        this.#quietLooks = 0;
        const rate = Math.round(window.events / seconds).toLocaleString("en-US");
        return { toCU: cu - 1, reason: `${rate} events/s fit in ${cu - 1} CU for ${scaleDownAfterIntervals} looks in a row` };
      }
      return undefined;
    }
    this.#quietLooks = 0;
    return undefined;
  }
}

/** Whole seconds from 10 s up, tenths below: a window is never exactly its nominal length. */
function formatSeconds(seconds: number): string {
  return seconds >= 10 ? `${Math.round(seconds)} s` : `${Number(seconds.toFixed(1))} s`;
}
