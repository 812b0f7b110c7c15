import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import {
  createTargetHealth,
  describeSeconds,
  disabledDeadLetterReason,
  type TargetHealth,
} from "../../src/delivery/target-health.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import type { TargetAddress } from "../../src/log/target-state-store.js";
import type { Logger } from "../../src/types.js";

const T0 = Date.parse("2026-03-01T12:00:00.000Z");
const HOOK: TargetAddress = { bus: "orders", rule: "big", targetId: "hook" };
const FIVE_DAYS = { disableAfterFailingSeconds: 432_000 };
const HOUR = 3_600_000;

const FAILED = { outcome: "retryable" as const, status: 503 };
const TIMED_OUT = { outcome: "retryable" as const };
const OK = { outcome: "success" as const, status: 200 };
const TOO_MANY = { outcome: "retryable" as const, status: 429 };
const BAD_EVENT = { outcome: "permanent" as const, status: 400 };
const GONE = { outcome: "permanent" as const, status: 410 };

interface Setup {
  storage: SqliteStorage;
  health: TargetHealth;
  clock: { now: number; nowMs(): number };
  warnings: { message: string; fields?: Record<string, unknown> }[];
}

function setup(t: TestContext): Setup {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-health-"));
  const storage = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only" });
  t.after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = {
    now: T0,
    nowMs() {
      return this.now;
    },
  };
  const warnings: Setup["warnings"] = [];
  const logger: Logger = {
    info() {},
    warn: (message, fields) => warnings.push({ message, ...(fields === undefined ? {} : { fields }) }),
    error: (message, fields) => warnings.push({ message, ...(fields === undefined ? {} : { fields }) }),
  };
  return { storage, health: createTargetHealth({ states: storage.targetStates, clock, logger }), clock, warnings };
}

test("target health - 410 Gone disables at once, with the time in the reason", (t) => {
  const { health, storage, warnings } = setup(t);
  assert.equal(health.isDisabled(HOOK), undefined);
  const after = health.afterAttempt(HOOK, GONE, FIVE_DAYS);
  assert.equal(after.disabled, "the endpoint answered 410 Gone at 2026-03-01T12:00:00.000Z");
  assert.equal(health.isDisabled(HOOK), after.disabled);
  const stored = storage.targetStates.get(HOOK);
  assert.equal(stored?.cause, "gone");
  assert.equal(stored?.disabledAtMs, T0);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.message, "target disabled");
  assert.equal(disabledDeadLetterReason(after.disabled), `target disabled: ${after.disabled}`);
});

test("target health - failing for the configured time without a success disables", (t) => {
  const { health, storage, clock } = setup(t);
  assert.deepEqual(health.afterAttempt(HOOK, FAILED, FIVE_DAYS), {});
  assert.equal(storage.targetStates.get(HOOK)?.failingSinceMs, T0);
  for (let hours = 1; hours < 120; hours += 7) {
    clock.now = T0 + hours * HOUR;
    assert.deepEqual(health.afterAttempt(HOOK, hours % 2 === 0 ? FAILED : TIMED_OUT, FIVE_DAYS), {});
    // 429s and the event's own 4xx neither end nor extend the run.
    assert.deepEqual(health.afterAttempt(HOOK, TOO_MANY, FIVE_DAYS), {});
  }
  assert.equal(storage.targetStates.get(HOOK)?.failingSinceMs, T0, "the run keeps its start");
  clock.now = T0 + 120 * HOUR - 1;
  assert.deepEqual(health.afterAttempt(HOOK, FAILED, FIVE_DAYS), {}, "a ms short of five days");
  clock.now = T0 + 120 * HOUR;
  const after = health.afterAttempt(HOOK, FAILED, FIVE_DAYS);
  assert.equal(after.disabled, "failing without a success since 2026-03-01T12:00:00.000Z (5 days)");
  assert.equal(storage.targetStates.get(HOOK)?.cause, "failing");
  assert.equal(health.isDisabled(HOOK), after.disabled);
});

test("target health - a success ends the failing run, and the next failure starts a new one", (t) => {
  const { health, storage, clock } = setup(t);
  health.afterAttempt(HOOK, FAILED, FIVE_DAYS);
  clock.now = T0 + 100 * HOUR;
  health.afterAttempt(HOOK, OK, FIVE_DAYS);
  assert.equal(storage.targetStates.get(HOOK)?.failingSinceMs, undefined);
  clock.now = T0 + 101 * HOUR;
  health.afterAttempt(HOOK, FAILED, FIVE_DAYS);
  clock.now = T0 + 121 * HOUR;
  assert.deepEqual(health.afterAttempt(HOOK, FAILED, FIVE_DAYS), {}, "20 hours into the new run");
  assert.equal(storage.targetStates.get(HOOK)?.failingSinceMs, T0 + 101 * HOUR);
});

test("target health - an answer that is the event's fault shows the endpoint up", (t) => {
  const { health, storage, clock } = setup(t);
  health.afterAttempt(HOOK, FAILED, FIVE_DAYS);
  clock.now = T0 + HOUR;
  health.afterAttempt(HOOK, BAD_EVENT, FIVE_DAYS);
  assert.equal(storage.targetStates.get(HOOK)?.failingSinceMs, undefined);
  health.afterAttempt(HOOK, TOO_MANY, FIVE_DAYS);
  assert.equal(storage.targetStates.get(HOOK)?.failingSinceMs, undefined, "a 429 does not start a run");
});

test("target health - the target's own limit counts, not the default", (t) => {
  const { health, clock } = setup(t);
  const minute = { disableAfterFailingSeconds: 60 };
  health.afterAttempt(HOOK, TIMED_OUT, minute);
  clock.now = T0 + 60_000;
  assert.equal(
    health.afterAttempt(HOOK, TIMED_OUT, minute).disabled,
    "failing without a success since 2026-03-01T12:00:00.000Z (1 minute)",
  );
});

test("target health - once disabled, later attempts report the first reason and log nothing more", (t) => {
  const { health, clock, warnings } = setup(t);
  const first = health.afterAttempt(HOOK, GONE, FIVE_DAYS).disabled;
  clock.now = T0 + 1_000;
  assert.equal(health.afterAttempt(HOOK, GONE, FIVE_DAYS).disabled, first);
  assert.equal(health.afterAttempt(HOOK, FAILED, FIVE_DAYS).disabled, first);
  assert.equal(health.afterAttempt(HOOK, OK, FIVE_DAYS).disabled, first, "an attempt in flight succeeding does not enable");
  assert.equal(warnings.length, 1);
});

test("target health - enabling (the API) lets it run again with a fresh failing run", (t) => {
  const { health, storage, clock } = setup(t);
  health.afterAttempt(HOOK, FAILED, { disableAfterFailingSeconds: 60 });
  clock.now = T0 + 61_000;
  assert.ok(health.afterAttempt(HOOK, FAILED, { disableAfterFailingSeconds: 60 }).disabled !== undefined, "disabled");
  storage.targetStates.enable(HOOK, clock.now);
  assert.equal(health.isDisabled(HOOK), undefined);
  clock.now += 1_000;
  assert.deepEqual(health.afterAttempt(HOOK, FAILED, { disableAfterFailingSeconds: 60 }), {}, "not disabled again at once");
});

test("target health - a storage failure is logged, never thrown into delivery", async (t) => {
  const { health, storage, warnings } = setup(t);
  await storage.close();
  assert.deepEqual(health.afterAttempt(HOOK, GONE, FIVE_DAYS), {});
  assert.equal(warnings[0]?.message, "target health could not be updated");
});

test("target health - durations read as the largest whole unit", () => {
  assert.equal(describeSeconds(432_000), "5 days");
  assert.equal(describeSeconds(86_400), "1 day");
  assert.equal(describeSeconds(7_200), "2 hours");
  assert.equal(describeSeconds(129_600), "36 hours");
  assert.equal(describeSeconds(60), "1 minute");
  assert.equal(describeSeconds(90), "90 seconds");
});
