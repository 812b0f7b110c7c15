/**
 * Billing records: per billing period (a calendar month, UTC), priced line items computed
 * from the daily usage (`usage_daily`), kept for good once the period is closed. The
 * metering layer (src/metering/billing-period.ts) decides what the line items are; this
 * store reads usage for it and writes the records and the period's closing in ONE
 * transaction, so a crash leaves a period either closed with all its records or open
 * with none.
 *
 * A closed period never changes: its rows are never updated or deleted (the schema's
 * triggers refuse it). Usage that reaches a closed period's days later is billed in a
 * later period as a late line item (`usagePeriod` older than `period`).
 */

/** `open`: usage still counts into it (records are a preview). `closed`: its records are final. */
export const BILLING_PERIOD_STATES = ["open", "closed"] as const;
export type BillingPeriodState = (typeof BILLING_PERIOD_STATES)[number];

/**
 * What a line item is for: a bus (publishes), a rule, a target (pushes, replays,
 * redrives), a stream (stream meters), or the service as a whole (usage of no resource).
 */
export const BILLING_RESOURCE_KINDS = ["bus", "rule", "target", "stream", "service"] as const;
export type BillingResourceKind = (typeof BILLING_RESOURCE_KINDS)[number];

/**
 * How a line item's unit price applies: per million 64 KB units (publishes, pushes,
 * replays, redrives, stream events), per CU-hour (the quantity counts CU-milli-hours), or
 * per day (the quantity counts idle days).
 */
export const PRICE_BASES = ["per-million-units", "per-cu-hour", "per-day"] as const;
export type PriceBasis = (typeof PRICE_BASES)[number];

/** A billing period as stored: closed periods only have rows (open ones are computed). */
export interface StoredBillingPeriod {
  /** `YYYY-MM`. */
  period: string;
  /** The period's first instant and the first instant after it, ms since the epoch (UTC). */
  fromMs: number;
  toMs: number;
  state: BillingPeriodState;
  closedAtMs?: number;
  /** ISO 4217 code the amounts are in. */
  currency: string;
  /** Decimal places of the currency's minor unit (2 for CNY): every amount has this many. */
  minorUnits: number;
  /** Sum of the line items' amounts, decimal text (exact: a sum of rounded amounts). */
  total: string;
  /** How many line items the period has. */
  lineItems: number;
}

/** Usage counted for one resource and meter: the key of a line item, with its sums. */
export interface ResourceUsage {
  meter: string;
  /** '' when the usage is not of that kind of resource (as in `usage_daily`). */
  bus: string;
  rule: string;
  target: string;
  stream: string;
  /** What the meter counts (events, attempts, CU-milli-hours, idle days). */
  quantity: number;
  /** 64 KB units. */
  units: number;
}

/** One priced line item, as the close writes it. */
export interface NewBillingRecord extends ResourceUsage {
  /** The period whose days the usage was counted on; older than the record's period for a late line. */
  usagePeriod: string;
  resourceKind: BillingResourceKind;
  /** The resource's display name: `bus`, `bus/rule`, `bus/rule/target`, or the stream. */
  resource: string;
  /** The tenant the resource is billed to (`billing.tenants`), '' when none. */
  tenant: string;
  /** Decimal text, in `currency` per `priceBasis`. */
  unitPrice: string;
  priceBasis: PriceBasis;
  /** Decimal text with exactly the currency's minor-unit places. */
  amount: string;
  /** `amount` as an integer count of minor units (fen for CNY), so sums in SQL stay exact. */
  amountMinor: number;
  currency: string;
}

/** A stored line item: its period and its position there. */
export interface BillingRecord extends NewBillingRecord {
  period: string;
  /** 1, 2, 3, ... within the period, in the order the close wrote them. */
  line: number;
}

/** A meter's usage on one day (UTC), summed over resources: what the report's chart draws. */
export interface DailyMeterUsage {
  /** The day's first instant, ms since the epoch. */
  dayMs: number;
  meter: string;
  quantity: number;
  units: number;
}

/** A period to close, and what to write with it. */
export interface PeriodToClose {
  period: string;
  fromMs: number;
  toMs: number;
  closedAtMs: number;
  currency: string;
  minorUnits: number;
}

/** Options of {@link BillingStore.closePeriod}. */
export interface ClosePeriodOptions {
  /**
   * Called after each record written, inside the transaction. Only tests pass it (to stop
   * the process in the middle of a close and prove nothing of it stays).
   */
  onRecordWritten?: (written: number, total: number) => void;
}

/** What {@link BillingStore.closePeriod} did. */
export interface ClosePeriodResult {
  /** False when the period was closed already: nothing was computed or written. */
  closed: boolean;
  period: StoredBillingPeriod;
}

/** Billing periods and records, in the state file next to the usage tables. */
export interface BillingStore {
  /** The stored (closed) period, or undefined. */
  getPeriod(period: string): StoredBillingPeriod | undefined;
  /** Every stored period, newest first. */
  listPeriods(): StoredBillingPeriod[];
  /** The line items of a stored period, by line. Empty for a period not stored. */
  records(period: string): BillingRecord[];
  /**
   * `usage_daily` summed per (meter, bus, rule, target, stream) over the days from `fromMs`
   * (inclusive) to `toMs` (exclusive), ordered by those keys.
   */
  usageBetween(fromMs: number, toMs: number): ResourceUsage[];
  /** The records of every period whose usage was counted in `usagePeriod`, summed per key. */
  billedUsage(usagePeriod: string): ResourceUsage[];
  /** `usage_daily` summed per day and meter over `fromMs` to `toMs` (exclusive), by day. */
  dailyUsage(fromMs: number, toMs: number): DailyMeterUsage[];
  /** The first day with daily or hourly usage, ms since the epoch; undefined when none. */
  firstUsageMs(): number | undefined;
  /** True when daily or hourly usage has a row from `fromMs` to `toMs` (exclusive). */
  hasUsage(fromMs: number, toMs: number): boolean;
  /**
   * Closes `period` in one IMMEDIATE transaction: `compute` runs inside it (under the write
   * lock, so the usage it reads cannot change before the records are written), its records
   * are written with lines 1..n, and the period row is stored closed with their total. A
   * period closed already is left as it is (`closed: false`, `compute` not called).
   */
  closePeriod(
    period: PeriodToClose,
    compute: () => NewBillingRecord[],
    options?: ClosePeriodOptions,
  ): ClosePeriodResult;
}

/**
 * An integer count of minor units as decimal text with `places` decimals:
 * `formatMinorUnits(1234, 2)` is `"12.34"`, `formatMinorUnits(-5, 2)` is `"-0.05"`,
 * `formatMinorUnits(7, 0)` is `"7"`. Integer arithmetic only.
 */
export function formatMinorUnits(minor: number, places: number): string {
  if (!Number.isSafeInteger(minor))
    throw new RangeError(`not a safe integer count of minor units: ${minor}`);
  const sign = minor < 0 ? "-" : "";
  const digits = String(Math.abs(minor)).padStart(places + 1, "0");
  if (places === 0) return `${sign}${digits}`;
  return `${sign}${digits.slice(0, -places)}.${digits.slice(-places)}`;
}
