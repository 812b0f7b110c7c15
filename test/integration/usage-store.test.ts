/**
 * The usage store on a real SQLite state file: upserts add up, reports group and sort,
 * the daily rollup is idempotent, the publish meter's tally and checkpoint commit together.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import { DAY_MS, HOUR_MS, publishCheckpointName, unitsOfBytes, unitsOfText } from "../../src/log/usage-store.js";
import { measureEvent } from "../../src/events/sizing.js";
import type { Clock } from "../../src/types.js";

const DAY = Date.UTC(2025, 0, 15);

function open(t: TestContext, clock?: Clock): SqliteStorage {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-usage-"));
  const storage = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only", ...(clock === undefined ? {} : { clock }) });
  t.after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return storage;
}

test("usage store - upserts add quantity and units to the same hour and resource", (t) => {
  const { usage } = open(t);
  const hour = DAY + 3 * HOUR_MS;
  usage.addCounts([
    { hourMs: hour, meter: "push", bus: "orders", rule: "r", target: "t", quantity: 2, units: 3 },
    { hourMs: hour, meter: "push", bus: "orders", rule: "r", target: "t", quantity: 1, units: 1 },
  ]);
  usage.addCounts([{ hourMs: hour, meter: "push", bus: "orders", rule: "r", target: "t", quantity: 4, units: 9 }]);
  usage.addCounts([{ hourMs: hour, meter: "push", bus: "orders", rule: "r", target: "u", quantity: 1, units: 1 }]);
  const report = usage.query({ fromMs: DAY, toMs: DAY + DAY_MS, groupBy: ["target"], granularity: "hour", limit: 100 });
  assert.deepEqual(report.rows, [
    { startMs: hour, target: "t", quantity: 7, units: 13 },
    { startMs: hour, target: "u", quantity: 1, units: 1 },
  ]);
  assert.deepEqual(report.totals, [{ meter: "push", quantity: 8, units: 14 }]);
  assert.equal(report.truncated, false);
});

test("usage store - reports group by any dimensions, sort by time then dimensions, show null where a meter has no such resource", (t) => {
  const { usage } = open(t);
  usage.addCounts([
    { hourMs: DAY + HOUR_MS, meter: "publish", bus: "b", quantity: 5, units: 6 },
    { hourMs: DAY, meter: "push", bus: "b", rule: "r2", target: "t", quantity: 1, units: 1 },
    { hourMs: DAY, meter: "push", bus: "a", rule: "r1", target: "t", quantity: 2, units: 2 },
    { hourMs: DAY, meter: "publish", bus: "a", quantity: 3, units: 3 },
  ]);
  const byBusRule = usage.query({ fromMs: DAY, toMs: DAY + DAY_MS, groupBy: ["meter", "rule", "bus"], granularity: "hour", limit: 100 });
  assert.deepEqual(byBusRule.rows, [
    { startMs: DAY, bus: "a", rule: null, meter: "publish", quantity: 3, units: 3 },
    { startMs: DAY, bus: "a", rule: "r1", meter: "push", quantity: 2, units: 2 },
    { startMs: DAY, bus: "b", rule: "r2", meter: "push", quantity: 1, units: 1 },
    { startMs: DAY + HOUR_MS, bus: "b", rule: null, meter: "publish", quantity: 5, units: 6 },
  ]);
  const byTime = usage.query({ fromMs: DAY, toMs: DAY + DAY_MS, groupBy: [], granularity: "hour", limit: 100 });
  assert.deepEqual(byTime.rows, [
    { startMs: DAY, quantity: 6, units: 6 },
    { startMs: DAY + HOUR_MS, quantity: 5, units: 6 },
  ]);
  // `from` rounds down to its hour; `to` is exclusive.
  const window = usage.query({ fromMs: DAY + 90 * 60_000, toMs: DAY + 2 * HOUR_MS, groupBy: ["meter"], granularity: "hour", limit: 100 });
  assert.deepEqual(window.rows, [{ startMs: DAY + HOUR_MS, meter: "publish", quantity: 5, units: 6 }]);
  const limited = usage.query({ fromMs: DAY, toMs: DAY + DAY_MS, groupBy: ["bus", "meter"], granularity: "hour", limit: 2 });
  assert.equal(limited.rows.length, 2);
  assert.equal(limited.truncated, true);
});

test("usage store - the daily rollup sums a day's hours, and rolling again (or after more counts) gives exact sums", (t) => {
  const { usage } = open(t);
  usage.addCounts([
    { hourMs: DAY, meter: "publish", bus: "a", quantity: 1, units: 1 },
    { hourMs: DAY + 23 * HOUR_MS, meter: "publish", bus: "a", quantity: 2, units: 5 },
    { hourMs: DAY + DAY_MS, meter: "publish", bus: "a", quantity: 100, units: 100 }, // the next day
    { hourMs: DAY + 5 * HOUR_MS, meter: "push", bus: "a", rule: "r", target: "t", quantity: 4, units: 4 },
  ]);
  const daily = () =>
    usage.query({ fromMs: DAY, toMs: DAY + DAY_MS, groupBy: ["meter"], granularity: "day", limit: 100 }).rows;
  assert.deepEqual(daily(), [], "nothing before a rollup");
  assert.equal(usage.rollUpDay(DAY), 2);
  const once = daily();
  assert.deepEqual(once, [
    { startMs: DAY, meter: "publish", quantity: 3, units: 6 },
    { startMs: DAY, meter: "push", quantity: 4, units: 4 },
  ]);
  usage.rollUpDay(DAY);
  usage.rollUpDay(DAY);
  assert.deepEqual(daily(), once, "rerunning changes nothing");
  usage.addCounts([{ hourMs: DAY + 2 * HOUR_MS, meter: "publish", bus: "a", quantity: 1, units: 2 }]);
  usage.rollUpDay(DAY);
  assert.deepEqual(daily()[0], { startMs: DAY, meter: "publish", quantity: 4, units: 8 });
});

test("usage store - counts landing before yesterday mark their day for the rollup until it has run", (t) => {
  const now = DAY + 10 * HOUR_MS;
  const { usage } = open(t, { nowMs: () => now });
  usage.addCounts([{ hourMs: DAY - DAY_MS, meter: "publish", bus: "a", quantity: 1, units: 1 }]);
  assert.equal(usage.pendingRollup(), undefined, "yesterday is always rolled up");
  usage.addCounts([{ hourMs: DAY - 3 * DAY_MS + HOUR_MS, meter: "publish", bus: "a", quantity: 1, units: 1 }]);
  const pending = usage.pendingRollup();
  assert.equal(pending?.fromDayMs, DAY - 3 * DAY_MS);
  usage.addCounts([{ hourMs: DAY - 5 * DAY_MS, meter: "publish", bus: "a", quantity: 1, units: 1 }]);
  const earlier = usage.pendingRollup();
  assert.equal(earlier?.fromDayMs, DAY - 5 * DAY_MS, "the earliest day wins");
  assert.ok(earlier!.version > pending!.version, "every write moves the version");
  usage.markRolledUp(pending!.version);
  assert.notEqual(usage.pendingRollup(), undefined, "a stale version does not clear the mark");
  usage.markRolledUp(earlier!.version);
  assert.equal(usage.pendingRollup(), undefined);
});

test("usage store - a publish tally reads the log per hour of receipt; its commit moves the checkpoint with the counts, forward only", async (t) => {
  let now = DAY + HOUR_MS - 1;
  const storage = open(t, { nowMs: () => now });
  const small = measureEvent("orders", { specversion: "1.0", id: "a", source: "s", type: "t" });
  const large = measureEvent("orders", { specversion: "1.0", id: "b", source: "s", type: "t", data: "x".repeat(70_000) });
  await storage.log.append([small, large]); // both at DAY + 1h - 1 ms
  now += 1;
  await storage.log.append([small]); // the next hour
  const { usage } = storage;
  const name = publishCheckpointName("orders");
  assert.equal(usage.meterCheckpoint(name), 0);
  const tally = await usage.tallyPublished("orders", 0, 2);
  assert.deepEqual(tally, { throughOffset: 2, events: 2, hours: [{ hourMs: DAY, events: 2, units: 3 }] });
  usage.commitPublished(name, "orders", tally);
  assert.equal(usage.meterCheckpoint(name), 2);
  const rest = await usage.tallyPublished("orders", 2, 100);
  assert.deepEqual(rest, { throughOffset: 3, events: 1, hours: [{ hourMs: DAY + HOUR_MS, events: 1, units: 1 }] });
  usage.commitPublished(name, "orders", rest);
  assert.throws(() => usage.commitPublished(name, "orders", tally), /cannot move from 3 to 2/);
  const report = usage.query({ fromMs: DAY, toMs: DAY + DAY_MS, groupBy: ["bus", "meter"], granularity: "hour", limit: 10 });
  assert.deepEqual(report.rows, [
    { startMs: DAY, bus: "orders", meter: "publish", quantity: 2, units: 3 },
    { startMs: DAY + HOUR_MS, bus: "orders", meter: "publish", quantity: 1, units: 1 },
  ]);
  assert.deepEqual(await usage.tallyPublished("orders", 3, 100), { throughOffset: 3, events: 0, hours: [] });
});

test("usage store - units are ceil(bytes / 65536), at least 1, for bytes and for UTF-8 text", () => {
  assert.deepEqual([0, 1, 65_535, 65_536, 65_537, 131_072, 131_073, 262_144].map(unitsOfBytes), [1, 1, 1, 1, 2, 2, 3, 4]);
  assert.equal(unitsOfText(""), 1);
  assert.equal(unitsOfText("é".repeat(32_768)), 1, "65,536 bytes");
  assert.equal(unitsOfText("é".repeat(32_769)), 2, "65,538 bytes");
  assert.equal(unitsOfText("x".repeat(65_537)), 2);
});

test("usage store - a tally from the journal of this run's commits is the tally SQL gives once the log is opened again", async (t) => {
  // The same storage answers from memory while it runs; a fresh one on the same files (as
  // after a restart) has no journal and sums in SQL. Both must count the same.
  const dir = mkdtempSync(join(tmpdir(), "relaybus-usage-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let now = DAY + HOUR_MS - 5;
  const clock = { nowMs: () => now };
  const asks: [number, number][] = [[0, 1], [0, 4_000], [3, 7], [10, 25], [57, 4_000], [60, 4_000], [200, 10]];
  const running = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only", clock });
  for (let call = 0; call < 20; call++) {
    const events = Array.from({ length: 1 + (call % 4) }, (_, i) =>
      measureEvent("orders", { specversion: "1.0", id: `e${call}-${i}`, source: "s", type: "t", data: "x".repeat(((call * 7 + i) % 3) * 40_000) }),
    );
    await running.log.append(events);
    now += call === 9 ? HOUR_MS : 1; // the sixth call crosses into the next hour, the eleventh one more
  }
  const fromJournal = await Promise.all(asks.map(([after, limit]) => running.usage.tallyPublished("orders", after, limit)));
  await running.close();
  const reopened = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only", clock });
  try {
    const fromSql = await Promise.all(asks.map(([after, limit]) => reopened.usage.tallyPublished("orders", after, limit)));
    assert.deepEqual(fromJournal, fromSql);
    assert.equal(fromSql[1]!.events, 50, "every event counted");
    assert.equal(fromSql[1]!.hours.length, 3, "three hours of receipt: before, on and an hour past DAY + 1 h");
    assert.ok(fromSql[1]!.hours.some((hour) => hour.units > hour.events), "some events over 64 KB");
  } finally {
    await reopened.close();
  }
});
