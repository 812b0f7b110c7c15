import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import type { CloudEvent, Logger } from "../../src/types.js";
import { silentLogger } from "../../src/types.js";
import type { ScheduleStore } from "../../src/log/schedule-store.js";
import type { SqliteStorage } from "../../src/log/sqlite/index.js";
import { createSqliteSchedules } from "../../src/log/sqlite/sqlite-schedules.js";
import { createBusScheduler, type BusScheduler } from "../../src/streams/bus-scheduler.js";
import { createRelaybusPort } from "../../src/streams/relaybus-port.js";
import type { BusSchedule } from "../../src/streams/schedule-model.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { startTestService, type TestService } from "../helpers/service.js";

const T0 = Date.parse("2030-01-01T00:00:00Z");
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const WAIT_MS = 10_000;

/** A manual clock: the scheduler looks at it at least once a second. */
function manualClock(startMs: number) {
  const clock = { now: startMs, nowMs: () => clock.now };
  return clock;
}

/** The schedule store on the service's state file (migration 14). */
function scheduleStoreOf(service: TestService): ScheduleStore {
  return createSqliteSchedules((service.storage as SqliteStorage).stateDatabase);
}

interface Running {
  service: TestService;
  scheduler: BusScheduler;
  store: ScheduleStore;
  /** Everything on `bus`, in offset order. */
  events(bus?: string): Promise<CloudEvent[]>;
  stop(): Promise<void>;
}

/** A Relaybus in `dir` (kept across restarts) and a bus scheduler on its real port and state file. */
async function startScheduler(
  t: TestContext,
  dir: string,
  clock: { nowMs(): number },
  options: { logger?: Logger; buses?: string[] } = {},
): Promise<Running> {
  const service = await startTestService({ dir });
  for (const bus of options.buses ?? [])
    if (!service.registry.busExists(bus)) service.registry.createBus({ name: bus });
  const relaybus = createRelaybusPort({
    log: service.storage.log,
    busExists: (bus) => service.registry.busExists(bus),
    limits: service.config.limits,
  });
  const store = scheduleStoreOf(service);
  const scheduler = createBusScheduler({
    relaybus,
    store,
    clock,
    logger: options.logger ?? silentLogger,
    retry: { initialDelayMs: 50, maxDelayMs: 200 },
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await scheduler.close();
    await service.close();
  };
  t.after(stop);
  return {
    service,
    scheduler,
    store,
    events: async (bus = "default") => (await relaybus.read(bus, 0, 1_000)).map((r) => r.event),
    stop,
  };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-bus-scheduler-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Waits until `read` gives at least `count` events; fails after WAIT_MS saying how many came. */
async function waitForEvents(
  read: () => Promise<CloudEvent[]>,
  count: number,
): Promise<CloudEvent[]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const events = await read();
    if (events.length >= count) return events;
    if (Date.now() > deadline)
      assert.fail(`expected ${count} events, got ${events.length} after ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Gives the scheduler time to notice the clock (it looks at least once a second). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1_500));

const iso = (ms: number) => new Date(ms).toISOString();

function schedule(overrides: Partial<BusSchedule> & Pick<BusSchedule, "name">): BusSchedule {
  return {
    expression: "rate(1 hour)",
    bus: "default",
    event: { source: "test.scheduler", type: "Tick", data: { job: overrides.name } },
    ...overrides,
  };
}

test("bus scheduler - a rate schedule publishes its events to the bus, fires at once, and reports its status", async (t) => {
  const clock = manualClock(T0);
  const running = await startScheduler(t, tempDir(t), clock);
  running.scheduler.set([schedule({ name: "tick", expression: "rate(1 minute)" })]);

  const first = await waitForEvents(() => running.events(), 1);
  assert.deepEqual(first[0], {
    specversion: "1.0",
    id: `tick:${iso(T0)}`,
    source: "test.scheduler",
    type: "Tick",
    time: iso(T0),
    datacontenttype: "application/json",
    data: { job: "tick" },
  });

  clock.now += 2 * MINUTE_MS;
  const three = await waitForEvents(() => running.events(), 3);
  assert.deepEqual(
    three.map((e) => e.id),
    [`tick:${iso(T0)}`, `tick:${iso(T0 + MINUTE_MS)}`, `tick:${iso(T0 + 2 * MINUTE_MS)}`],
  );
  assert.deepEqual(running.scheduler.status(), [
    {
      name: "tick",
      bus: "default",
      expression: "rate(1 minute)",
      timezone: "UTC",
      enabled: true,
      nextFireAt: iso(T0 + 3 * MINUTE_MS),
      lastFiredAt: iso(T0 + 2 * MINUTE_MS),
    },
  ]);
  assert.deepEqual(
    running.store.list().map((p) => [p.name, p.position]),
    [["tick", iso(T0 + 2 * MINUTE_MS)]],
  );
  await running.stop();
  await assertNothingOpen();
});

test("bus scheduler - missed runs across a restart: skip publishes none, once publishes the most recent", async (t) => {
  const dir = tempDir(t);
  const clock = manualClock(T0);
  const schedules = [
    schedule({ name: "skipper", missedRuns: "skip" }),
    schedule({ name: "oncer", missedRuns: "once" }),
  ];
  const before = await startScheduler(t, dir, clock);
  before.scheduler.set(schedules);
  await waitForEvents(() => before.events(), 2);
  await before.stop();

  // Down from T0 to 5 h 10 min: fires at 1 h ... 5 h are missed (more than 60 s late).
  clock.now = T0 + 5 * HOUR_MS + 10 * MINUTE_MS;
  const after = await startScheduler(t, dir, clock);
  after.scheduler.set(schedules);
  await waitForEvents(() => after.events(), 3);
  await settle();
  const ids = (await after.events()).map((e) => e.id);
  assert.deepEqual(
    ids.slice(2),
    [`oncer:${iso(T0 + 5 * HOUR_MS)}`],
    "one catch-up for once, none for skip",
  );
  assert.equal(after.store.lastFired("skipper"), iso(T0));
  assert.equal(
    after.scheduler.status().find((s) => s.name === "skipper")?.nextFireAt,
    iso(T0 + 6 * HOUR_MS),
  );

  // Both go on along their grid.
  clock.now = T0 + 6 * HOUR_MS;
  const later = await waitForEvents(() => after.events(), 5);
  assert.deepEqual(
    later
      .slice(3)
      .map((e) => e.id)
      .sort(),
    [`oncer:${iso(T0 + 6 * HOUR_MS)}`, `skipper:${iso(T0 + 6 * HOUR_MS)}`],
  );
});

test("bus scheduler - a fire less than a minute late after a restart is published, not missed", async (t) => {
  const dir = tempDir(t);
  const clock = manualClock(T0);
  const schedules = [schedule({ name: "hourly", missedRuns: "skip" })];
  const before = await startScheduler(t, dir, clock);
  before.scheduler.set(schedules);
  await waitForEvents(() => before.events(), 1);
  await before.stop();

  clock.now = T0 + HOUR_MS + 20_000;
  const after = await startScheduler(t, dir, clock);
  after.scheduler.set(schedules);
  const events = await waitForEvents(() => after.events(), 2);
  assert.equal(events[1]?.id, `hourly:${iso(T0 + HOUR_MS)}`);
});

test("bus scheduler - a disabled schedule does not fire; enabling it starts it afresh", async (t) => {
  const clock = manualClock(T0);
  const running = await startScheduler(t, tempDir(t), clock);
  running.scheduler.set([
    schedule({ name: "paused", expression: "rate(1 minute)", enabled: false }),
  ]);
  await settle();
  clock.now += 5 * MINUTE_MS;
  await settle();
  assert.deepEqual(await running.events(), []);
  assert.deepEqual(running.scheduler.status(), [
    {
      name: "paused",
      bus: "default",
      expression: "rate(1 minute)",
      timezone: "UTC",
      enabled: false,
    },
  ]);

  running.scheduler.set([
    schedule({ name: "paused", expression: "rate(1 minute)", enabled: true }),
  ]);
  const events = await waitForEvents(() => running.events(), 1);
  assert.equal(events[0]?.id, `paused:${iso(T0 + 5 * MINUTE_MS)}`);

  // Disabling drops the position, so enabling again does not catch up.
  running.scheduler.set([
    schedule({ name: "paused", expression: "rate(1 minute)", enabled: false }),
  ]);
  await settle();
  assert.equal(running.store.lastFired("paused"), undefined);
});

test("bus scheduler - set() keeps unchanged schedules running and refuses a bad set whole", async (t) => {
  const clock = manualClock(T0);
  const started: string[] = [];
  const logger: Logger = {
    ...silentLogger,
    info(message, fields) {
      if (message === "schedule started") started.push(String(fields?.schedule));
    },
  };
  const running = await startScheduler(t, tempDir(t), clock, { logger });
  const a = schedule({ name: "a" });
  running.scheduler.set([a]);
  await waitForEvents(() => running.events(), 1);
  running.scheduler.set([a, schedule({ name: "b" })]);
  await waitForEvents(() => running.events(), 2);
  assert.deepEqual(started.sort(), ["a", "b"], "a was not restarted");

  assert.throws(
    () => running.scheduler.set([a, schedule({ name: "c", expression: "cron(0 25 * * ? *)" })]),
    { message: 'schedule "c": cron(0 25 * * ? *): field 2 (hours) 25 is out of range 0-23' },
  );
  assert.throws(() => running.scheduler.set([a, a]), { message: 'schedule "a" is defined twice' });
  assert.throws(
    () => running.scheduler.set([schedule({ name: "z", timezone: "Nowhere/City" })]),
    /schedule "z": time zone "Nowhere\/City"/,
  );
  assert.deepEqual(
    running.scheduler.status().map((s) => s.name),
    ["a", "b"],
    "the old set keeps running",
  );

  // A changed definition restarts that schedule only.
  running.scheduler.set([a, schedule({ name: "b", expression: "rate(2 hours)" })]);
  await settle();
  assert.deepEqual(started.sort(), ["a", "b", "b"]);
});

test("bus scheduler - a publish to a missing bus is retried with backoff until the bus exists", async (t) => {
  const clock = manualClock(T0);
  const running = await startScheduler(t, tempDir(t), clock);
  running.scheduler.set([schedule({ name: "early", bus: "later" })]);
  const deadline = Date.now() + WAIT_MS;
  while (running.scheduler.status()[0]?.lastError === undefined) {
    assert.ok(Date.now() < deadline, "the failure shows in the status");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.match(
    running.scheduler.status()[0]?.lastError?.message ?? "",
    /bus "later" does not exist/,
  );
  assert.equal(
    running.store.lastFired("early"),
    undefined,
    "nothing recorded before the publish succeeded",
  );

  running.service.registry.createBus({ name: "later" });
  const events = await waitForEvents(() => running.events("later"), 1);
  assert.equal(events[0]?.id, `early:${iso(T0)}`);
  // The position is recorded once the publish is acknowledged, which can come a moment after
  // a read of the log file already sees the event (the writer thread commits, then answers).
  const recordedBy = Date.now() + WAIT_MS;
  while (running.store.lastFired("early") === undefined && Date.now() < recordedBy) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(running.store.lastFired("early"), iso(T0));
});

test("schedule store - positions are recorded, replaced, listed, forgotten, and survive a reopen", async (t) => {
  const dir = tempDir(t);
  const first = await startTestService({ dir });
  t.after(() => first.close());
  const store = scheduleStoreOf(first);
  assert.equal(store.lastFired("nightly"), undefined);
  store.recordFired("nightly", "2030-01-01T00:00:00.000Z", 1);
  store.recordFired("nightly", "2030-01-02T00:00:00.000Z", 2);
  store.recordFired("hourly", "2030-01-02T05:00:00.000Z", 3);
  assert.deepEqual(store.list(), [
    { name: "hourly", position: "2030-01-02T05:00:00.000Z", recordedAtMs: 3 },
    { name: "nightly", position: "2030-01-02T00:00:00.000Z", recordedAtMs: 2 },
  ]);
  await first.close();

  const second = await startTestService({ dir });
  t.after(() => second.close());
  const reopened = scheduleStoreOf(second);
  assert.equal(reopened.lastFired("nightly"), "2030-01-02T00:00:00.000Z");
  reopened.forget("nightly");
  reopened.forget("never-there");
  assert.deepEqual(
    reopened.list().map((p) => p.name),
    ["hourly"],
  );
});
