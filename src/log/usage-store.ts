/**
 * Usage: what the meters counted, per hour and per day, per meter and resource (bus, rule,
 * target, stream). Counts are written in the same transaction as what they count (a
 * delivery attempt, a replayed or redriven delivery) or derived from the log with a
 * checkpoint (publishes), so they never drift from what happened. Billing prices the daily
 * rows; `GET /v1/usage` reports either.
 */

/**
 * Every meter. `publish`: events appended to a bus (system buses included: billing prices
 * them at 0). `push`: delivery attempts, retries included. `replay`: deliveries a replay
 * enqueued. `redrive`: dead letters redriven. `stream-events`: events a stream billed per event
 * read, retries included. `stream-cu-hours`: CU-milli-hours of streams billed by capacity.
 * `stream-idle`: days without inflow of a stream idle for 30 days or more.
 */
export const METERS = [
  "publish",
  "push",
  "replay",
  "redrive",
  "stream-events",
  "stream-cu-hours",
  "stream-idle",
] as const;
export type Meter = (typeof METERS)[number];


/** What a usage report may group by, besides time; reports sort and list them in this order. */
export const USAGE_DIMENSIONS = ["bus", "rule", "target", "stream", "meter"] as const;
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number];

/** `hour` reads the hourly counts, `day` the daily rollup. */
export const USAGE_GRANULARITIES = ["hour", "day"] as const;
export type UsageGranularity = (typeof USAGE_GRANULARITIES)[number];

/** One hour in ms; hourly rows start at multiples of it (UTC). */
export const HOUR_MS = 3_600_000;
/** One day in ms; daily rows start at UTC midnight. */
export const DAY_MS = 86_400_000;

/** Bytes in one 64 KB unit (the same unit as events/sizing.ts, which the log sits below). */
export const USAGE_UNIT_BYTES = 65_536;

/** The 64 KB units of `bytes`: `ceil(bytes / 65536)`, at least 1. */
export function unitsOfBytes(bytes: number): number {
  return bytes <= USAGE_UNIT_BYTES ? 1 : Math.ceil(bytes / USAGE_UNIT_BYTES);
}

/**
 * The 64 KB units of `text` encoded as UTF-8. A string of at most 21,845 UTF-16 code units
 * is at most 65,535 bytes (3 bytes per code unit at worst), so the common small body is one
 * unit without measuring it: this runs once per delivery attempt.
 */
export function unitsOfText(text: string): number {
  return text.length <= 21_845 ? 1 : unitsOfBytes(Buffer.byteLength(text, "utf8"));
}

/** The start of the UTC hour of `timeMs`. */
export function hourOf(timeMs: number): number {
  return Math.floor(timeMs / HOUR_MS) * HOUR_MS;
}

/** The start of the UTC day of `timeMs`. */
export function dayOf(timeMs: number): number {
  return Math.floor(timeMs / DAY_MS) * DAY_MS;
}

/** One count to add to an hour. Resources a meter does not concern are left out. */
export interface UsageCount {
  /** The start of the hour, a multiple of {@link HOUR_MS}. */
  hourMs: number;
  meter: Meter;
  bus?: string;
  rule?: string;
  target?: string;
  stream?: string;
  /** What the meter counts: events, attempts, deliveries. */
  quantity: number;
  /** 64 KB units. */
  units: number;
}

/** Which usage a report covers and how it is grouped. */
export interface UsageQuery {
  /** From this time (ms since the epoch), rounded down to its hour or day. */
  fromMs: number;
  /** Up to this time, exclusive: buckets that start before it. */
  toMs: number;
  groupBy: readonly UsageDimension[];
  granularity: UsageGranularity;
  /** Most rows; past it the report says `truncated`. */
  limit: number;
}

/** One row of a report: a bucket of time and, for each dimension grouped by, its value. */
export interface UsageRow {
  /** The start of the hour or day. */
  startMs: number;
  /** Present when grouped by it; null where the meter does not concern it (a publish has no rule). */
  bus?: string | null;
  rule?: string | null;
  target?: string | null;
  stream?: string | null;
  meter?: Meter;
  quantity: number;
  units: number;
}

/** The totals of a report's whole range, per meter. */
export interface UsageTotal {
  meter: Meter;
  quantity: number;
  units: number;
}

/** A usage report: rows sorted by time then by the dimensions, and totals per meter. */
export interface UsageReport {
  rows: UsageRow[];
  totals: UsageTotal[];
  /** True when more rows matched than `limit`; `rows` then holds the first `limit`. */
  truncated: boolean;
}

/** What the log holds after a publish meter's checkpoint, summed per hour of receipt. */
export interface PublishedTally {
  /** The highest offset counted; the meter's next checkpoint. */
  throughOffset: number;
  /** Events counted. */
  events: number;
  hours: { hourMs: number; events: number; units: number }[];
}

/** Usage counts, their rollup and the meters' checkpoints, in the state file. */
export interface UsageStore {
  /** Adds counts to their hours (a row's quantity and units grow), in one transaction. */
  addCounts(counts: readonly UsageCount[]): void;
  /** A report over hourly or daily rows. */
  query(query: UsageQuery): UsageReport;
  /**
   * Sums the hourly rows of the UTC day starting at `dayMs` into its daily rows (replacing
   * them), in one transaction: rerunning it gives the same rows. Returns the rows written.
   */
  rollUpDay(dayMs: number): number;
  /**
   * The first day a rollup must cover besides today and yesterday: the earliest day counts
   * landed in since the last {@link UsageStore.markRolledUp}, or undefined. With the
   * version {@link UsageStore.markRolledUp} checks.
   */
  pendingRollup(): { fromDayMs: number; version: number } | undefined;
  /** Clears the pending mark if it is still at `version` (no count landed in an old day since). */
  markRolledUp(version: number): void;
  /** The checkpoint of a meter (0 when none). */
  meterCheckpoint(name: string): number;
  /**
   * Reads the log of `bus` after `afterOffset` (at most `limit` events) and sums events and
   * units per hour of receipt. On SQLite it sums the log's in-memory journal of recent
   * commits, or else offsets, times and units in SQL, never the events' JSON; other engines
   * read the events (see `tallyLogEvents`).
   */
  tallyPublished(bus: string, afterOffset: number, limit: number): Promise<PublishedTally>;
  /**
   * Adds a tally to the `publish` meter of `bus` and moves the meter's checkpoint `name` to
   * its `throughOffset`, in ONE transaction: a crash loses both or neither, so a rerun never
   * counts an event twice or misses one. Throws `InternalError` if the checkpoint would move back.
   */
  commitPublished(name: string, bus: string, tally: PublishedTally): void;
}

/** The meter checkpoint of the publish meter on `bus`: the last offset of its log counted. */
export function publishCheckpointName(bus: string): string {
  return `publish:${bus}`;
}

/**
 * Events and units per hour of receipt, added one event at a time: what a
 * {@link PublishedTally} holds. Receive times follow offsets, so an event's hour is nearly
 * always the last one's, and that is looked at first.
 */
export class HourlyTally {
  private readonly hours: PublishedTally["hours"] = [];

  add(receivedAtMs: number, units: number): void {
    const hourMs = hourOf(receivedAtMs);
    let hour = this.hours[this.hours.length - 1];
    if (hour?.hourMs !== hourMs) hour = this.hours.find((h) => h.hourMs === hourMs);
    if (hour === undefined) this.hours.push((hour = { hourMs, events: 0, units: 0 }));
    hour.events += 1;
    hour.units += units;
  }

  /** The hours, oldest first. */
  sorted(): PublishedTally["hours"] {
    return this.hours.sort((a, b) => a.hourMs - b.hourMs);
  }
}

/** Sums events and units per hour of receipt: a {@link PublishedTally} of events read from a log. */
export function tallyLogEvents(
  afterOffset: number,
  events: readonly { offset: number; receivedAtMs: number; units: number }[],
): PublishedTally {
  const hours = new HourlyTally();
  let throughOffset = afterOffset;
  for (const event of events) {
    hours.add(event.receivedAtMs, event.units);
    if (event.offset > throughOffset) throughOffset = event.offset;
  }
  return { throughOffset, events: events.length, hours: hours.sorted() };
}
