/**
 * The schedule source beyond the shared conformance test: first runs, missed-run policies,
 * event defaults, time zones across a DST change, one-time schedules. A manual clock drives
 * it; the source looks at the clock at least once a second.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { scheduleSource, type ScheduleSourceConfig } from "../../connectors/schedule/index.js";
import { silentLogger, type Clock, type CloudEvent, type Logger } from "../../src/types.js";
import { runSource, type SourceRun } from "../helpers/connector-runs.js";
import { assertNothingOpen } from "../helpers/open-handles.js";

const iso = (ms: number) => new Date(ms).toISOString();

interface Run extends SourceRun {
  /** Gives the source time to look at the clock, then returns what came. */
  settle(): Promise<CloudEvent[]>;
}

function start(
  config: ScheduleSourceConfig,
  clock: Clock,
  options: { position?: string; maxBatchEvents?: number; logger?: Logger } = {},
): Run {
  const run = runSource(scheduleSource, config, { ...options, clock, streamName: "nightly" });
  return {
    ...run,
    async settle() {
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      return run.received;
    },
  };
}

function manualClock(startMs: number) {
  const clock = { now: startMs, nowMs: () => clock.now };
  return clock;
}

test("schedule source - a first run starts now: a rate fires at once, a cron waits for its time", async () => {
  const t0 = Date.parse("2030-01-01T10:00:30Z");
  const clock = manualClock(t0);
  const rate = start({ expression: "rate(10 minutes)" }, clock);
  const cron = start({ expression: "cron(0 * * * ? *)" }, clock);
  try {
    await rate.waitFor(1);
    assert.equal(rate.received[0]?.id, `nightly:${iso(t0)}`);
    assert.deepEqual(await cron.settle(), [], "no back-fill of 10:00");
    clock.now = Date.parse("2030-01-01T11:00:00Z");
    await cron.waitFor(1);
    await rate.waitFor(6);
    assert.deepEqual(
      cron.received.map((e) => e.time),
      ["2030-01-01T11:00:00.000Z"],
    );
    assert.equal(
      rate.received[5]?.time,
      iso(t0 + 50 * 60_000),
      "rate stays on its grid from the first run",
    );
  } finally {
    await rate.stop();
    await cron.stop();
  }
});

test("schedule source - missed fires: skip hands over none, once the most recent; late ones all", async () => {
  const t0 = Date.parse("2030-01-01T00:00:00Z");
  const position = iso(t0);
  const warnings: Record<string, unknown>[] = [];
  const logger: Logger = {
    ...silentLogger,
    warn: (_m, fields) => void warnings.push(fields ?? {}),
  };
  // Down until 03:00:30: 01:00 and 02:00 are missed, 03:00 is 30 s late, not missed.
  const clock = manualClock(Date.parse("2030-01-01T03:00:30Z"));
  const config: ScheduleSourceConfig = { expression: "cron(0 * * * ? *)" };
  const skip = start({ ...config, missedRuns: "skip" }, clock, { position, logger });
  const once = start({ ...config, missedRuns: "once" }, clock, { position });
  const patient = start({ ...config, missedRuns: "skip", missedAfterMs: 4 * 3_600_000 }, clock, {
    position,
  });
  try {
    await skip.settle();
    assert.deepEqual(
      skip.received.map((e) => e.time),
      ["2030-01-01T03:00:00.000Z"],
    );
    assert.deepEqual(
      once.received.map((e) => e.time),
      ["2030-01-01T02:00:00.000Z", "2030-01-01T03:00:00.000Z"],
    );
    assert.deepEqual(
      patient.received.map((e) => e.time),
      ["2030-01-01T01:00:00.000Z", "2030-01-01T02:00:00.000Z", "2030-01-01T03:00:00.000Z"],
    );
    assert.equal(once.position(), "2030-01-01T03:00:00.000Z");
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.handedOver, "none");
    clock.now = Date.parse("2030-01-01T04:00:00Z");
    await skip.waitFor(2);
    assert.equal(skip.received[1]?.time, "2030-01-01T04:00:00.000Z");
  } finally {
    await skip.stop();
    await once.stop();
    await patient.stop();
  }
});

test("schedule source - events: deterministic ids, fire time, defaults and configured fields", async () => {
  const clock = manualClock(Date.parse("2030-01-01T00:00:00Z"));
  const bare = start({ expression: "rate(1 minute)", startAt: "2030-01-01T00:00:00Z" }, clock);
  const full = start(
    {
      expression: "rate(1 minute)",
      startAt: "2030-01-01T01:00:00+01:00",
      event: { source: "shop.cron", type: "Invoice Run", data: { batch: [1, 2] } },
    },
    clock,
  );
  try {
    await bare.waitFor(1);
    await full.waitFor(1);
    assert.deepEqual(bare.received[0], {
      specversion: "1.0",
      id: "nightly:2030-01-01T00:00:00.000Z",
      source: "relaybus.scheduler",
      type: "Scheduled Event",
      time: "2030-01-01T00:00:00.000Z",
    });
    assert.deepEqual(full.received[0], {
      specversion: "1.0",
      id: "nightly:2030-01-01T00:00:00.000Z",
      source: "shop.cron",
      type: "Invoice Run",
      time: "2030-01-01T00:00:00.000Z",
      datacontenttype: "application/json",
      data: { batch: [1, 2] },
    });
    assert.equal(bare.batches[0]?.position, "2030-01-01T00:00:00.000Z");
  } finally {
    await bare.stop();
    await full.stop();
  }
});

test("schedule source - a cron in a time zone across the spring-forward day, due fires in bounded batches", async () => {
  const clock = manualClock(Date.parse("2026-03-06T12:00:00Z"));
  const run = start(
    {
      expression: "cron(30 2,3 * * ? *)",
      timezone: "America/New_York",
      missedAfterMs: 7 * 86_400_000,
    },
    clock,
    {
      maxBatchEvents: 2,
    },
  );
  try {
    clock.now = Date.parse("2026-03-10T00:00:00Z");
    await run.waitFor(5);
    await run.settle();
    // 03-08: 02:30 does not exist; 03:30 EDT is 07:30Z.
    assert.deepEqual(
      run.received.map((e) => e.time),
      [
        "2026-03-07T07:30:00.000Z",
        "2026-03-07T08:30:00.000Z",
        "2026-03-08T07:30:00.000Z",
        "2026-03-09T06:30:00.000Z",
        "2026-03-09T07:30:00.000Z",
      ],
    );
    assert.deepEqual(
      run.batches.map((b) => b.events.length),
      [2, 2, 1],
    );
  } finally {
    await run.stop();
  }
});

test("schedule source - at() fires once and a restart after it hands over nothing", async () => {
  const clock = manualClock(Date.parse("2030-05-01T06:00:00Z"));
  const config: ScheduleSourceConfig = {
    expression: "at(2030-05-01T09:00:00)",
    timezone: "Europe/Berlin",
  };
  const first = start(config, clock);
  let position: string | undefined;
  try {
    clock.now = Date.parse("2030-05-01T07:00:00Z");
    await first.waitFor(1);
    assert.equal(first.received[0]?.time, "2030-05-01T07:00:00.000Z");
    clock.now += 86_400_000;
    assert.equal((await first.settle()).length, 1);
    position = first.position();
  } finally {
    await first.stop();
  }
  const second = start({ ...config, missedRuns: "once" }, clock, { position });
  try {
    assert.deepEqual(await second.settle(), []);
  } finally {
    await second.stop();
  }
});

test("schedule source - a bad expression is refused by create(), a bad position fails the run", async () => {
  const clock = manualClock(0);
  assert.throws(
    () => start({ expression: "cron(0 0 * * * *)" }, clock),
    /exactly one of field 3 \(day-of-month\) and field 5/,
  );
  assert.throws(
    () => start({ expression: "rate(1 minute)", timezone: "Atlantis/Capital" }, clock),
    /time zone "Atlantis\/Capital"/,
  );
  const run = start({ expression: "rate(1 minute)" }, clock, { position: "yesterday" });
  await assert.rejects(run.running, /the saved position "yesterday" is not an ISO 8601 time/);
  await assertNothingOpen();
});
