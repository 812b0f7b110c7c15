/**
 * Killing the billing close in the middle (SIGKILL, no chance to clean up) and running it
 * again gives exactly the records of a close that was never interrupted, on a copy of the
 * same data: the daily rollup is idempotent, and the records are written in one transaction
 * with marking the period closed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import Database from "better-sqlite3";
import { openSqliteStorage } from "../../src/log/sqlite/index.js";
import type { UsageCount } from "../../src/log/usage-store.js";

const CHILD = new URL("../fixtures/billing-close-child.ts", import.meta.url).pathname;
const MAY = Date.UTC(2026, 4, 1);
const NOW = Date.UTC(2026, 5, 2, 3);
const BUSES = 4;
const TARGETS_PER_BUS = 30;

let root: string;
let pristine: string;

/** May's usage: every hour of every day, a publish per bus and a push per target (~90k rows). */
function mayUsage(): UsageCount[] {
  const counts: UsageCount[] = [];
  for (let hour = 0; hour < 31 * 24; hour++) {
    const hourMs = MAY + hour * 3_600_000;
    for (let b = 0; b < BUSES; b++) {
      const bus = `bus-${b}`;
      counts.push({
        hourMs,
        meter: "publish",
        bus,
        quantity: 1_000 + hour,
        units: 1_000 + hour + b,
      });
      for (let t = 0; t < TARGETS_PER_BUS; t++) {
        counts.push({
          hourMs,
          meter: "push",
          bus,
          rule: "rule",
          target: `t-${t}`,
          quantity: 10 + t,
          units: 11 + t + (hour % 3),
        });
      }
    }
  }
  // Late-looking usage in April and June, outside the period: never in May's records.
  counts.push({ hourMs: MAY - 3_600_000, meter: "publish", bus: "bus-0", quantity: 5, units: 5 });
  counts.push({
    hourMs: Date.UTC(2026, 5, 1, 1),
    meter: "publish",
    bus: "bus-0",
    quantity: 6,
    units: 6,
  });
  return counts;
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), "relaybus-billing-kill-"));
  pristine = join(root, "pristine");
  const storage = openSqliteStorage({ dataDir: pristine, durability: "fsync-wal-only" });
  storage.usage.addCounts(mayUsage());
  await storage.close();
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A copy of the prepared data directory. */
function copyOfData(name: string): string {
  const dir = join(root, name);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

/** Runs the child to the end; resolves with its output. */
function runClose(dataDir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CHILD, dataDir, "2026-05", String(NOW)],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) =>
      code === 0 && output.includes("CLOSED")
        ? resolve(output)
        : reject(new Error(`close exited ${code}:\n${output}`)),
    );
  });
}

/** Runs the child until it pauses at `pauseAt`, then SIGKILLs it. */
function killCloseAt(dataDir: string, pauseAt: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CHILD, dataDir, "2026-05", String(NOW), pauseAt],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the close never reached ${pauseAt}:\n${output}`));
    }, 60_000);
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("PAUSED")) child.kill("SIGKILL");
    });
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (_code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL" && output.includes("PAUSED")) resolve();
      else
        reject(new Error(`expected a kill at ${pauseAt}, the close ended (${signal}):\n${output}`));
    });
  });
}

interface FileState {
  periods: unknown[];
  records: unknown[];
  daily: unknown[];
}

function readState(dataDir: string): FileState {
  const db = new Database(join(dataDir, "relaybus-state.db"), { readonly: true });
  try {
    return {
      periods: db.prepare("SELECT * FROM billing_periods ORDER BY period").all(),
      records: db.prepare("SELECT * FROM billing_records ORDER BY period, line").all(),
      daily: db
        .prepare("SELECT * FROM usage_daily ORDER BY day_ms, meter, bus, rule, target, stream")
        .all(),
    };
  } finally {
    db.close();
  }
}

let uninterrupted: FileState;

test("billing kill - an uninterrupted close of the prepared data, for comparison", async () => {
  const dir = copyOfData("uninterrupted");
  await runClose(dir);
  uninterrupted = readState(dir);
  assert.equal(uninterrupted.periods.length, 1);
  assert.equal(uninterrupted.records.length, BUSES * (1 + TARGETS_PER_BUS));
  assert.equal((uninterrupted.periods[0] as { state: string }).state, "closed");
});

test("billing kill - killed while writing the records, nothing of the close stays; a rerun gives the same records", async () => {
  const dir = copyOfData("killed-in-records");
  const half = Math.floor((BUSES * (1 + TARGETS_PER_BUS)) / 2);
  await killCloseAt(dir, `records:${half}`);
  const afterKill = readState(dir);
  assert.deepEqual(afterKill.periods, [], "the period is not closed");
  assert.deepEqual(afterKill.records, [], "no record of the interrupted transaction stays");
  assert.deepEqual(afterKill.daily, uninterrupted.daily, "the rollup before it had finished");

  await runClose(dir);
  assert.deepEqual(readState(dir), uninterrupted);
});

test("billing kill - killed in the middle of the daily rollup; a rerun gives the same usage and records", async () => {
  const dir = copyOfData("killed-in-rollup");
  // The close rolls April (30 days), then May: stop in the middle of May.
  await killCloseAt(dir, "rollup:45");
  const afterKill = readState(dir);
  assert.deepEqual(afterKill.periods, []);
  assert.ok(
    afterKill.daily.length > 0 && afterKill.daily.length < uninterrupted.daily.length,
    "part of the days were rolled up",
  );

  await runClose(dir);
  assert.deepEqual(readState(dir), uninterrupted);
  // A second close of the closed period changes nothing.
  await runClose(dir);
  assert.deepEqual(readState(dir), uninterrupted);
});
