/**
 * The stream meters on a real state file: CU time adds up to exact CU-milli-hours however it
 * is sliced; the idle fee counts each whole day without inflow once a stream has had none for
 * 30 days, once, and starts over after an event; a batch's `stream-events` count lands with
 * its position.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openSqliteStorage } from "../../src/log/sqlite/open-sqlite-storage.js";
import { DAY_MS, type Meter } from "../../src/log/usage-store.js";
import { STREAM_IDLE_AFTER_MS } from "../../src/metering/metering.js";

const T0 = Date.UTC(2026, 0, 10, 15, 30);

async function withStorage(body: (storage: ReturnType<typeof openSqliteStorage>) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-stream-meters-"));
  const storage = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only", clock: { nowMs: () => T0 } });
  try {
    body(storage);
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function total(storage: ReturnType<typeof openSqliteStorage>, meter: Meter): number {
  const report = storage.usage.query({ fromMs: 0, toMs: T0 + 400 * DAY_MS, groupBy: ["meter"], granularity: "hour", limit: 10_000 });
  return report.totals.find((t) => t.meter === meter)?.quantity ?? 0;
}

test("stream meters - CU time becomes exact CU-milli-hours, the remainder carried", () =>
  withStorage((storage) => {
    storage.streams.ensureRuntime("s", "running", 1, T0);
    // 2 CU for 1.8 s, twice: 7,200 CU-ms = 2 CU-milli-hours exactly, though neither slice is one.
    storage.streams.addCapacityTime("s", 2, 1_800, T0);
    assert.equal(total(storage, "stream-cu-hours"), 1);
    storage.streams.addCapacityTime("s", 2, 1_800, T0);
    assert.equal(total(storage, "stream-cu-hours"), 2);
    for (let i = 0; i < 1_000; i++) storage.streams.addCapacityTime("s", 3, 1, T0);
    assert.equal(total(storage, "stream-cu-hours"), 2, "3,000 CU-ms wait in the remainder");
    storage.streams.addCapacityTime("s", 1, 600, T0);
    assert.equal(total(storage, "stream-cu-hours"), 3);
  }));

test("stream meters - the idle fee counts each day once, after 30 days without inflow", () =>
  withStorage((storage) => {
    storage.streams.ensureRuntime("quiet", "running", 1, T0);
    const firstIdleDay = Math.ceil((T0 + STREAM_IDLE_AFTER_MS) / DAY_MS) * DAY_MS;
    assert.equal(storage.streams.meterIdleDays(firstIdleDay, STREAM_IDLE_AFTER_MS), 0, "not idle for a month yet");
    assert.equal(storage.streams.meterIdleDays(firstIdleDay + 3 * DAY_MS, STREAM_IDLE_AFTER_MS), 3);
    assert.equal(storage.streams.meterIdleDays(firstIdleDay + 3 * DAY_MS, STREAM_IDLE_AFTER_MS), 0, "a rerun counts nothing twice");
    assert.equal(storage.streams.meterIdleDays(firstIdleDay + 5 * DAY_MS, STREAM_IDLE_AFTER_MS), 2);
    assert.equal(total(storage, "stream-idle"), 5);

    // An event: the month starts over from it.
    const eventAt = firstIdleDay + 5 * DAY_MS + 3_600_000;
    storage.streams.commitProgress("quiet", {
      position: "7",
      atMs: eventAt,
      eventsIn: 1,
      meteredEvents: 1,
      meteredUnits: 1,
      eventsOut: 1,
      bytesOut: 300,
      eventsFiltered: 0,
      retries: 0,
      throttledMs: 0,
      deadLetters: [],
      deadLetteredElsewhere: 0,
    });
    assert.equal(storage.streams.meterIdleDays(eventAt + 20 * DAY_MS, STREAM_IDLE_AFTER_MS), 0);
    assert.equal(storage.streams.meterIdleDays(Math.ceil((eventAt + STREAM_IDLE_AFTER_MS) / DAY_MS) * DAY_MS + DAY_MS, STREAM_IDLE_AFTER_MS), 1);
    assert.equal(total(storage, "stream-idle"), 6);
    assert.equal(total(storage, "stream-events"), 1);
    const runtime = storage.streams.runtime("quiet");
    assert.equal(runtime?.position, "7");
    assert.equal(runtime?.lastEventAtMs, eventAt);
  }));
