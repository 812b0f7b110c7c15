/**
 * Usage on SQLite, in the state file (migration 7): `usage_hourly` grows by upserts that add
 * to a row's quantity and units; `usage_daily` is rolled up from it; `meter_checkpoints`
 * holds how far the publish meter has read each bus's log, and the mark of old days that
 * need rolling up again.
 *
 * The other stores count what they do through {@link UsageTally} and
 * {@link createUsageWriter}, inside their own transactions on this same connection: a
 * delivery attempt and its count commit together or not at all. A tally adds up in
 * JavaScript first, so a batch of thousands of attempts costs one upsert per (hour, meter,
 * resource), not one per attempt.
 */
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";
import type { Clock } from "../../types.js";
import {
  DAY_MS,
  HOUR_MS,
  USAGE_DIMENSIONS,
  dayOf,
  type Meter,
  type PublishedTally,
  type UsageDimension,
  type UsageQuery,
  type UsageReport,
  type UsageRow,
  type UsageStore,
  type UsageTotal,
} from "../usage-store.js";
import { statementCache } from "./statement-cache.js";
import { guardStorage } from "./storage-error.js";

/**
 * The meter checkpoint that marks the earliest old day (before yesterday) a count landed in
 * since the last rollup. Its `updated_at_ms` grows by at least 1 on every write, so it also
 * serves as a version: a rollup clears the mark only if nothing moved it meanwhile.
 */
const PENDING_ROLLUP = "usage-rollup:pending-from";

interface TallyEntry {
  hourMs: number;
  meter: Meter;
  bus: string;
  rule: string;
  target: string;
  stream: string;
  quantity: number;
  units: number;
}

/** Counts added up in memory per (hour, meter, resource), to be written in one go. */
export class UsageTally {
  private readonly entries = new Map<string, TallyEntry>();

  /** Adds `quantity` and `units` to the hour of `atMs` for `meter` and the resource. */
  add(
    atMs: number,
    meter: Meter,
    resource: { bus?: string; rule?: string; target?: string; stream?: string },
    quantity: number,
    units: number,
  ): void {
    const hourMs = Math.floor(atMs / HOUR_MS) * HOUR_MS;
    const bus = resource.bus ?? "";
    const rule = resource.rule ?? "";
    const target = resource.target ?? "";
    const stream = resource.stream ?? "";
    const key = `${hourMs}\u0000${meter}\u0000${bus}\u0000${rule}\u0000${target}\u0000${stream}`;
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.entries.set(key, { hourMs, meter, bus, rule, target, stream, quantity, units });
    } else {
      entry.quantity += quantity;
      entry.units += units;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  values(): IterableIterator<TallyEntry> {
    return this.entries.values();
  }
}

/**
 * Writes a tally: one upsert per entry, and the pending-rollup mark when an entry lands
 * before yesterday (UTC). Call it INSIDE the transaction of what the tally counts.
 */
export type UsageWriter = (tally: UsageTally) => void;

/** Prepares the statements of a {@link UsageWriter} on the state file's connection. */
export function createUsageWriter(db: Database.Database, clock: Clock): UsageWriter {
  const upsert = db.prepare<[number, string, string, string, string, string, number, number]>(
    `INSERT INTO usage_hourly (hour_ms, meter, bus, rule, target, stream, quantity, units)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (hour_ms, meter, bus, rule, target, stream, origin) DO UPDATE SET
       quantity = quantity + excluded.quantity, units = units + excluded.units`,
  );
  const markPending = createRollupMark(db, clock);
  return (tally) => {
    if (tally.size === 0) return;
    let earliestHourMs = Number.POSITIVE_INFINITY;
    for (const e of tally.values()) {
      upsert.run(e.hourMs, e.meter, e.bus, e.rule, e.target, e.stream, e.quantity, e.units);
      if (e.hourMs < earliestHourMs) earliestHourMs = e.hourMs;
    }
    markPending(earliestHourMs);
  };
}

/**
 * Marks the day of `hourMs` for the next rollup when it is older than yesterday (UTC): today
 * and yesterday are rolled up on every run anyway. Call it inside the transaction that wrote
 * counts into that day (this node's, or another node's shared with it).
 */
export function createRollupMark(db: Database.Database, clock: Clock): (hourMs: number) => void {
  const markPending = db.prepare<[string, number, number]>(
    `INSERT INTO meter_checkpoints (name, through, updated_at_ms) VALUES (?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET through = MIN(through, excluded.through),
       updated_at_ms = MAX(excluded.updated_at_ms, updated_at_ms + 1)`,
  );
  return (hourMs) => {
    const nowMs = clock.nowMs();
    if (hourMs < dayOf(nowMs) - DAY_MS) markPending.run(PENDING_ROLLUP, dayOf(hourMs), nowMs);
  };
}

/** What {@link createSqliteUsage} needs. */
export interface SqliteUsageOptions {
  /** The state file's connection (the usage tables). */
  db: Database.Database;
  /** Where the publish meter's tallies come from: the log engine's `tallyPublished`. */
  logReader: (bus: string, afterOffset: number, limit: number) => Promise<PublishedTally>;
  clock: Clock;
}

/** Creates the usage store. */
export function createSqliteUsage(options: SqliteUsageOptions): UsageStore {
  const { db, logReader, clock } = options;
  const writeTally = createUsageWriter(db, clock);

  const upsertCheckpoint = db.prepare<[string, number, number]>(
    `INSERT INTO meter_checkpoints (name, through, updated_at_ms) VALUES (?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET through = excluded.through, updated_at_ms = excluded.updated_at_ms`,
  );
  const selectPending = db.prepare<[string], { through: number; version: number }>(
    "SELECT through, updated_at_ms AS version FROM meter_checkpoints WHERE name = ?",
  );
  const clearPending = db.prepare<[string, number]>(
    "DELETE FROM meter_checkpoints WHERE name = ? AND updated_at_ms = ?",
  );
  // INSERT OR REPLACE, not delete-then-insert: a day's daily rows are the sums of its hourly
  // rows, and should hourly rows ever be pruned, rolling an old day again keeps its totals.
  const rollUp = db.prepare<[number, number, number]>(
    `INSERT OR REPLACE INTO usage_daily (day_ms, meter, bus, rule, target, stream, quantity, units)
     SELECT ?, meter, bus, rule, target, stream, SUM(quantity), SUM(units) FROM usage_hourly
     WHERE hour_ms >= ? AND hour_ms < ? GROUP BY meter, bus, rule, target, stream`,
  );

  /** Checkpoints, read once at open: log retention asks for them per bus. */
  const checkpoints = new Map<string, number>();
  for (const row of db
    .prepare<[], { name: string; through: number }>("SELECT name, through FROM meter_checkpoints")
    .all()) {
    checkpoints.set(row.name, row.through);
  }

  const commitPublished = db.transaction((name: string, bus: string, tally: PublishedTally) => {
    const counts = new UsageTally();
    for (const hour of tally.hours) counts.add(hour.hourMs, "publish", { bus }, hour.events, hour.units);
    writeTally(counts);
    upsertCheckpoint.run(name, tally.throughOffset, clock.nowMs());
  });

  const addCounts = db.transaction((tally: UsageTally) => writeTally(tally));

  /** Report statements by their SQL (one per table and set of dimensions), made on first use. */
  const prepared = statementCache(db);

  return {
    addCounts(counts) {
      const tally = new UsageTally();
      for (const c of counts) {
        tally.add(c.hourMs, c.meter, c, c.quantity, c.units);
      }
      guardStorage("addUsage", () => addCounts.immediate(tally));
    },
    query(query) {
      return guardStorage("queryUsage", () => runQuery(query));
    },
    rollUpDay(dayMs) {
      return guardStorage("rollUpUsage", () =>
        db.transaction(() => rollUp.run(dayMs, dayMs, dayMs + DAY_MS).changes).immediate(),
      );
    },
    pendingRollup() {
      const row = guardStorage("pendingRollup", () => selectPending.get(PENDING_ROLLUP));
      return row === undefined ? undefined : { fromDayMs: row.through, version: row.version };
    },
    markRolledUp(version) {
      guardStorage("markRolledUp", () => clearPending.run(PENDING_ROLLUP, version));
    },
    meterCheckpoint(name) {
      return checkpoints.get(name) ?? 0;
    },
    tallyPublished(bus, afterOffset, limit) {
      return logReader(bus, afterOffset, limit);
    },
    commitPublished(name, bus, tally) {
      const current = checkpoints.get(name) ?? 0;
      if (!Number.isInteger(tally.throughOffset) || tally.throughOffset < current) {
        throw new RelaybusError(
          "InternalError",
          `meter checkpoint "${name}" cannot move from ${current} to ${tally.throughOffset}`,
          { details: { name, checkpoint: current, throughOffset: tally.throughOffset } },
        );
      }
      guardStorage("commitPublished", () => commitPublished.immediate(name, bus, tally));
      checkpoints.set(name, tally.throughOffset);
    },
  };

  function runQuery(query: UsageQuery): UsageReport {
    const daily = query.granularity === "day";
    const table = daily ? "usage_daily" : "usage_hourly";
    const time = daily ? "day_ms" : "hour_ms";
    const bucketMs = daily ? DAY_MS : HOUR_MS;
    const fromMs = Math.floor(query.fromMs / bucketMs) * bucketMs;
    // Dimensions in one fixed order, whatever order the query gave: the sort follows it.
    const dimensions = USAGE_DIMENSIONS.filter((d) => query.groupBy.includes(d));
    const columns = dimensions.map((d) => DIMENSION_COLUMNS[d]);
    const select = [`${time} AS startMs`, ...columns].join(", ");
    const group = [time, ...columns].join(", ");
    const rows = prepared<Record<string, unknown>>(
      `SELECT ${select}, SUM(quantity) AS quantity, SUM(units) AS units FROM ${table}
       WHERE ${time} >= ? AND ${time} < ? GROUP BY ${group} ORDER BY ${group} LIMIT ?`,
    ).all(fromMs, query.toMs, query.limit + 1);
    const totals = prepared<UsageTotal>(
      `SELECT meter, SUM(quantity) AS quantity, SUM(units) AS units FROM ${table}
       WHERE ${time} >= ? AND ${time} < ? GROUP BY meter ORDER BY meter`,
    ).all(fromMs, query.toMs);
    const truncated = rows.length > query.limit;
    return {
      rows: (truncated ? rows.slice(0, query.limit) : rows).map((row) => toUsageRow(row, dimensions)),
      totals,
      truncated,
    };
  }
}

const DIMENSION_COLUMNS: Record<UsageDimension, string> = {
  bus: "bus",
  rule: "rule",
  target: "target",
  stream: "stream",
  meter: "meter",
};

function toUsageRow(row: Record<string, unknown>, dimensions: readonly UsageDimension[]): UsageRow {
  // Keys in the order a reader expects: time, the dimensions, then the counts.
  const out = { startMs: row["startMs"] as number } as UsageRow;
  for (const dimension of dimensions) {
    const value = row[dimension] as string;
    if (dimension === "meter") out.meter = value as Meter;
    else out[dimension] = value === "" ? null : value;
  }
  out.quantity = row["quantity"] as number;
  out.units = row["units"] as number;
  return out;
}
