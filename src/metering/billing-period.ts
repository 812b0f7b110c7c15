/**
 * Billing periods: previews of open ones, and the close that makes a period's records final.
 *
 * Closing a period (a calendar month, UTC):
 * 1. has the meters catch up (`catchUp`), then rolls the hourly usage of the period's days
 *    (and of the period before, where late counts most likely land) into `usage_daily`,
 *    one day per transaction. The rollup is idempotent (daily = SUM(hourly), replacing the
 *    day's rows), so a crash in the middle is repaired by running it again;
 * 2. in ONE transaction: prices the period's daily usage per (meter, resource), adds late
 *    lines (below), writes the records and marks the period closed. A crash before the
 *    commit leaves nothing of it; a rerun computes the same records.
 *
 * A closed period never changes; closing it again does nothing. Usage that reaches a closed
 * period's days afterwards (a meter that caught up late, a count of an old hour) is not
 * lost and not billed twice: the next period closed after it bills the difference between
 * the closed period's usage and what was billed for it, as late line items (their
 * `usagePeriod` names the period the usage was counted in). Usage never billed before a
 * period was closed is only looked for in periods closed before the one being closed.
 *
 * An open period's records are a preview: computed the same way, now, and not stored.
 */
import { RelaybusError } from "../errors.js";
import type {
  BillingPeriodState,
  BillingStore,
  ClosePeriodResult,
  DailyMeterUsage,
  NewBillingRecord,
  PeriodToClose,
} from "../log/billing-store.js";
import type { Clock, Logger } from "../types.js";
import {
  daysOf,
  nextPeriod,
  parsePeriod,
  periodOf,
  previousPeriod,
  type PeriodRange,
} from "./billing-calendar.js";
import { lateUsage, priceUsage, type LinePricing } from "./billing-line-items.js";
import { totalsOf, type BillingTotals } from "./billing-totals.js";
import type { PriceTable } from "./price-table.js";

/** A period's line items and totals: stored ones once it is closed, a preview before. */
export interface BillingStatement extends PeriodRange {
  state: BillingPeriodState;
  /** True when the records are computed now and not stored (the period is open). */
  preview: boolean;
  closedAtMs?: number;
  currency: string;
  /** Decimal places of every amount. */
  minorUnits: number;
  lineItems: (NewBillingRecord & { line: number })[];
  totals: BillingTotals;
  /** Usage per meter and day (UTC) of the period, for charts. */
  dailyUsage: DailyMeterUsage[];
}

/** A period as listed: its state and total. */
export interface PeriodSummary extends PeriodRange {
  state: BillingPeriodState;
  preview: boolean;
  closedAtMs?: number;
  currency: string;
  total: string;
  lineItems: number;
}

/** A step of a close, for {@link CloseOptions.onStep}. */
export type CloseStep =
  | { phase: "rollup"; dayMs: number; done: number; days: number }
  | { phase: "records"; written: number; records: number };

export interface CloseOptions {
  /**
   * Called after each day rolled up and each record written (inside the close's
   * transaction). Test-only: it lets a test stop the process in the middle of a close.
   */
  onStep?: (step: CloseStep) => void;
}

export interface BillingPeriodsDeps {
  store: BillingStore;
  prices: PriceTable;
  /** `billing.tenants`: the tenant of each bus. */
  tenants: Readonly<Record<string, string>>;
  /** True for a system bus (its publishes are free). Default: no bus is. */
  isSystemBus?: (bus: string) => boolean;
  /**
   * Rolls one day's hourly usage into `usage_daily`, idempotently (the usage store's
   * `rollUpDay`: daily = SUM(hourly), replacing the day's rows).
   */
  rollupDay: (dayMs: number) => void;
  /**
   * Brings meters that count after the fact (the publish meter reads the log) up to now
   * before a close or a preview, so the period's last events are in it. Optional.
   */
  catchUp?: () => Promise<void>;
  clock: Clock;
  logger: Logger;
}

export interface BillingPeriods {
  /**
   * The statement of `period` (`YYYY-MM`): stored when closed, a preview when open (after
   * the meters have caught up). Throws `ValidationError` for a malformed period and
   * `BillingPeriodNotFound` for one that has not begun.
   */
  statement(period: string): Promise<BillingStatement>;
  /**
   * Closed periods, the current one (a preview) and ended ones with usage not closed yet
   * (previews), newest first.
   */
  list(): Promise<PeriodSummary[]>;
  /**
   * Closes an ended period now. Throws `BillingPeriodNotEnded` for the current or a future
   * period. A closed period is answered as it is (`closed: false`).
   */
  close(period: string, options?: CloseOptions): Promise<ClosePeriodResult>;
  /**
   * What the scheduled job runs: closes every ended period not closed yet that has usage,
   * and the one just ended in any case, oldest first. Returns the periods it closed.
   */
  closeEnded(): Promise<string[]>;
}

export function createBillingPeriods(deps: BillingPeriodsDeps): BillingPeriods {
  const { store, prices, rollupDay, clock, logger } = deps;
  const pricing: LinePricing = {
    prices,
    tenantOf: (bus) => deps.tenants[bus] ?? "",
    isSystemBus: deps.isSystemBus ?? (() => false),
  };

  /** The records closing `range` now would write (read inside the close's transaction). */
  const computeRecords = (range: PeriodRange): NewBillingRecord[] => {
    const records = priceUsage(store.usageBetween(range.fromMs, range.toMs), range.period, pricing);
    for (const closed of [...store.listPeriods()].reverse()) {
      if (closed.state !== "closed" || closed.period >= range.period) continue;
      const { late, shrunk } = lateUsage(
        store.usageBetween(closed.fromMs, closed.toMs),
        store.billedUsage(closed.period),
      );
      records.push(...priceUsage(late, closed.period, pricing));
      if (shrunk.length > 0) {
        logger.warn(
          "usage of a closed billing period is below what was billed; nothing is credited",
          {
            period: closed.period,
            keys: shrunk.length,
          },
        );
      }
    }
    return records;
  };

  /**
   * Rolls up the days of `range` and of the period before it (where late counts most likely
   * land) that have begun by now, oldest first, one transaction per day.
   */
  const rollup = (range: PeriodRange, onStep?: CloseOptions["onStep"]) => {
    const nowMs = clock.nowMs();
    const days = [...daysOf(previousPeriod(range)), ...daysOf(range)].filter((day) => day <= nowMs);
    days.forEach((dayMs, index) => {
      rollupDay(dayMs);
      onStep?.({ phase: "rollup", dayMs, done: index + 1, days: days.length });
    });
  };

  const preview = (range: PeriodRange): BillingStatement => {
    // The same days a close rolls up, so the preview shows what a close would write.
    rollup(range);
    const lines = computeRecords(range).map((r, i) => ({ ...r, line: i + 1 }));
    return {
      ...range,
      state: "open",
      preview: true,
      currency: prices.currency,
      minorUnits: prices.minorUnits,
      lineItems: lines,
      totals: totalsOf(lines, prices.minorUnits),
      dailyUsage: store.dailyUsage(range.fromMs, range.toMs),
    };
  };

  const statement = async (period: string): Promise<BillingStatement> => {
    const range = parsePeriod(period);
    const stored = store.getPeriod(range.period);
    if (stored?.state !== "closed") {
      if (range.fromMs > clock.nowMs()) {
        throw new RelaybusError("BillingPeriodNotFound", `period ${range.period} has not begun`, {
          details: { period: range.period },
        });
      }
      await deps.catchUp?.();
      return preview(range);
    }
    const lines = store.records(range.period);
    return {
      ...range,
      state: "closed",
      preview: false,
      ...(stored.closedAtMs === undefined ? {} : { closedAtMs: stored.closedAtMs }),
      currency: stored.currency,
      minorUnits: stored.minorUnits,
      lineItems: lines,
      totals: totalsOf(lines, stored.minorUnits),
      dailyUsage: store.dailyUsage(range.fromMs, range.toMs),
    };
  };

  const close = async (period: string, options: CloseOptions = {}): Promise<ClosePeriodResult> => {
    const range = parsePeriod(period);
    const nowMs = clock.nowMs();
    if (range.toMs > nowMs) {
      throw new RelaybusError(
        "BillingPeriodNotEnded",
        `period ${range.period} has not ended (it ends ${new Date(range.toMs).toISOString()}); only ended periods can be closed`,
        { details: { period: range.period, endsAtMs: range.toMs } },
      );
    }
    const existing = store.getPeriod(range.period);
    if (existing?.state === "closed") return { closed: false, period: existing };
    await deps.catchUp?.();
    rollup(range, options.onStep);
    const toClose: PeriodToClose = {
      ...range,
      closedAtMs: clock.nowMs(),
      currency: prices.currency,
      minorUnits: prices.minorUnits,
    };
    const result = store.closePeriod(toClose, () => computeRecords(range), {
      ...(options.onStep === undefined
        ? {}
        : {
            onRecordWritten: (written, records) =>
              options.onStep?.({ phase: "records", written, records }),
          }),
    });
    if (result.closed) {
      logger.info("billing period closed", {
        period: range.period,
        lineItems: result.period.lineItems,
        total: `${result.period.total} ${result.period.currency}`,
      });
    }
    return result;
  };

  return {
    statement,
    async list() {
      await deps.catchUp?.();
      const nowMs = clock.nowMs();
      const current = periodOf(nowMs);
      const stored = new Map(store.listPeriods().map((p) => [p.period, p]));
      const summaries: PeriodSummary[] = [];
      const first = store.firstUsageMs();
      const start = first === undefined ? current : periodOf(Math.min(first, current.fromMs));
      for (let range = start; range.fromMs <= current.fromMs; range = nextPeriod(range)) {
        const closed = stored.get(range.period);
        stored.delete(range.period);
        if (closed?.state === "closed") {
          summaries.push({ ...range, ...closed, preview: false });
        } else if (range.period === current.period || store.hasUsage(range.fromMs, range.toMs)) {
          const shown = preview(range);
          summaries.push({
            ...range,
            state: "open",
            preview: true,
            currency: shown.currency,
            total: shown.totals.total,
            lineItems: shown.lineItems.length,
          });
        }
      }
      // Closed periods outside the usage's span (usage rows pruned since): still listed.
      for (const closed of stored.values()) summaries.push({ ...closed, preview: false });
      return summaries.sort((a, b) => (a.period < b.period ? 1 : a.period > b.period ? -1 : 0));
    },
    close,
    async closeEnded() {
      const nowMs = clock.nowMs();
      const justEnded = previousPeriod(periodOf(nowMs));
      const first = store.firstUsageMs();
      const start = first === undefined ? justEnded : periodOf(Math.min(first, justEnded.fromMs));
      const closed: string[] = [];
      for (let range = start; range.toMs <= justEnded.toMs; range = nextPeriod(range)) {
        if (store.getPeriod(range.period)?.state === "closed") continue;
        if (range.period !== justEnded.period && !store.hasUsage(range.fromMs, range.toMs))
          continue;
        if ((await close(range.period)).closed) closed.push(range.period);
      }
      return closed;
    },
  };
}
