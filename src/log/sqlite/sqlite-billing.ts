/**
 * Billing periods and records on SQLite, in the state file (migration 8), next to the usage
 * tables they are computed from (migration 7). Closing a period is one IMMEDIATE
 * transaction: the usage is read, the records written and the period marked closed under
 * one write lock, so a crash (even a SIGKILL between two record inserts) leaves the file
 * as it was before the close, and a rerun computes the same records.
 */
import type Database from "better-sqlite3";
import {
  formatMinorUnits,
  type BillingRecord,
  type BillingStore,
  type DailyMeterUsage,
  type StoredBillingPeriod,
  type ResourceUsage,
} from "../billing-store.js";
import { guardStorage, toStorageError } from "./storage-error.js";

interface PeriodRow {
  period: string;
  fromMs: number;
  toMs: number;
  state: "open" | "closed";
  closedAtMs: number | null;
  currency: string;
  minorUnits: number;
  totalMinor: number;
  lineItems: number;
}

const PERIOD_COLUMNS =
  "period, from_ms AS fromMs, to_ms AS toMs, state, closed_at_ms AS closedAtMs, currency, " +
  "minor_units AS minorUnits, total_minor AS totalMinor, line_items AS lineItems";

const RECORD_COLUMNS =
  "period, line, usage_period AS usagePeriod, resource_kind AS resourceKind, resource, bus, rule, target, " +
  "stream, tenant, meter, quantity, units, unit_price AS unitPrice, price_basis AS priceBasis, amount, " +
  "amount_minor AS amountMinor, currency";

/** Sums per line-item key, in one order so that closes and previews list lines alike. */
const USAGE_KEY = "meter, bus, rule, target, stream";

/**
 * Creates the billing store on `db`, an open, migrated connection to the state file (the
 * one the usage store writes through: a close then sees every committed count).
 */
export function createSqliteBilling(db: Database.Database): BillingStore {
  const selectPeriod = db.prepare<[string], PeriodRow>(
    `SELECT ${PERIOD_COLUMNS} FROM billing_periods WHERE period = ?`,
  );
  const selectPeriods = db.prepare<[], PeriodRow>(
    `SELECT ${PERIOD_COLUMNS} FROM billing_periods ORDER BY period DESC`,
  );
  const selectRecords = db.prepare<[string], BillingRecord>(
    `SELECT ${RECORD_COLUMNS} FROM billing_records WHERE period = ? ORDER BY line`,
  );
  const selectUsage = db.prepare<[number, number], ResourceUsage>(
    `SELECT ${USAGE_KEY}, SUM(quantity) AS quantity, SUM(units) AS units FROM usage_daily
     WHERE day_ms >= ? AND day_ms < ? GROUP BY ${USAGE_KEY} ORDER BY ${USAGE_KEY}`,
  );
  const selectBilled = db.prepare<[string], ResourceUsage>(
    `SELECT ${USAGE_KEY}, SUM(quantity) AS quantity, SUM(units) AS units FROM billing_records
     WHERE usage_period = ? GROUP BY ${USAGE_KEY} ORDER BY ${USAGE_KEY}`,
  );
  const selectDaily = db.prepare<[number, number], DailyMeterUsage>(
    `SELECT day_ms AS dayMs, meter, SUM(quantity) AS quantity, SUM(units) AS units FROM usage_daily
     WHERE day_ms >= ? AND day_ms < ? GROUP BY day_ms, meter ORDER BY day_ms, meter`,
  );
  const firstDaily = db.prepare<[], number | null>("SELECT MIN(day_ms) FROM usage_daily").pluck();
  const firstHourly = db
    .prepare<[], number | null>("SELECT MIN(hour_ms) FROM usage_hourly")
    .pluck();
  const anyUsage = db
    .prepare<[number, number, number, number], number>(
      `SELECT EXISTS (SELECT 1 FROM usage_daily WHERE day_ms >= ? AND day_ms < ?)
           OR EXISTS (SELECT 1 FROM usage_hourly WHERE hour_ms >= ? AND hour_ms < ?)`,
    )
    .pluck();
  const insertRecord = db.prepare(
    `INSERT INTO billing_records (period, line, usage_period, resource_kind, resource, bus, rule, target, stream,
       tenant, meter, quantity, units, unit_price, price_basis, amount, amount_minor, currency)
     VALUES (@period, @line, @usagePeriod, @resourceKind, @resource, @bus, @rule, @target, @stream, @tenant,
       @meter, @quantity, @units, @unitPrice, @priceBasis, @amount, @amountMinor, @currency)`,
  );
  const upsertClosed = db.prepare(
    `INSERT INTO billing_periods (period, from_ms, to_ms, state, closed_at_ms, currency, minor_units,
       total_minor, line_items)
     VALUES (@period, @fromMs, @toMs, 'closed', @closedAtMs, @currency, @minorUnits, @totalMinor, @lineItems)
     ON CONFLICT (period) DO UPDATE SET state = 'closed', closed_at_ms = excluded.closed_at_ms,
       currency = excluded.currency, minor_units = excluded.minor_units, total_minor = excluded.total_minor,
       line_items = excluded.line_items`,
  );

  const close: BillingStore["closePeriod"] = (period, compute, options = {}) => {
    const run = db.transaction(() => {
      const existing = selectPeriod.get(period.period);
      if (existing?.state === "closed") return { closed: false, period: toPeriod(existing) };
      const records = compute();
      let totalMinor = 0;
      records.forEach((record, index) => {
        insertRecord.run({ ...record, period: period.period, line: index + 1 });
        totalMinor += record.amountMinor;
        options.onRecordWritten?.(index + 1, records.length);
      });
      if (!Number.isSafeInteger(totalMinor)) {
        throw new RangeError(
          `the total of period ${period.period} is beyond exact integers: ${totalMinor}`,
        );
      }
      upsertClosed.run({ ...period, totalMinor, lineItems: records.length });
      return { closed: true, period: toPeriod(selectPeriod.get(period.period)!) };
    });
    try {
      return run.immediate();
    } catch (error) {
      throw toStorageError(error, "closeBillingPeriod");
    }
  };

  return {
    getPeriod(period) {
      const row = guardStorage("getBillingPeriod", () => selectPeriod.get(period));
      return row === undefined ? undefined : toPeriod(row);
    },
    listPeriods: () => guardStorage("listBillingPeriods", () => selectPeriods.all().map(toPeriod)),
    records: (period) => guardStorage("billingRecords", () => selectRecords.all(period)),
    usageBetween: (fromMs, toMs) => guardStorage("readUsage", () => selectUsage.all(fromMs, toMs)),
    billedUsage: (usagePeriod) =>
      guardStorage("readBilledUsage", () => selectBilled.all(usagePeriod)),
    dailyUsage: (fromMs, toMs) =>
      guardStorage("readDailyUsage", () => selectDaily.all(fromMs, toMs)),
    firstUsageMs() {
      const [daily, hourly] = guardStorage("readUsage", () => [
        firstDaily.get(),
        firstHourly.get(),
      ]);
      const found = [daily, hourly].filter((ms): ms is number => typeof ms === "number");
      return found.length === 0 ? undefined : Math.min(...found);
    },
    hasUsage: (fromMs, toMs) =>
      guardStorage("readUsage", () => anyUsage.get(fromMs, toMs, fromMs, toMs) === 1),
    closePeriod: close,
  };
}

function toPeriod(row: PeriodRow): StoredBillingPeriod {
  return {
    period: row.period,
    fromMs: row.fromMs,
    toMs: row.toMs,
    state: row.state,
    ...(row.closedAtMs === null ? {} : { closedAtMs: row.closedAtMs }),
    currency: row.currency,
    minorUnits: row.minorUnits,
    total: formatMinorUnits(row.totalMinor, row.minorUnits),
    lineItems: row.lineItems,
  };
}
