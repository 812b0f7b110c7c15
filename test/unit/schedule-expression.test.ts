import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { createTask } from "node-cron";
import { parseScheduleExpression } from "../../connectors/schedule/schedule-expression.js";
import { lastFireBetween, planStart } from "../../connectors/schedule/missed-runs.js";
import { wallTimeAt } from "../../connectors/schedule/zoned-time.js";

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The first `count` fires after `from` (ISO), as ISO strings. */
function fires(
  expression: string,
  from: string,
  count: number,
  timezone?: string,
  anchorMs?: number,
): (string | undefined)[] {
  const schedule = parseScheduleExpression(expression, timezone, { anchorMs });
  const out: (string | undefined)[] = [];
  let at = Date.parse(from);
  for (let i = 0; i < count; i++) {
    const next = schedule.nextAfter(at);
    out.push(iso(next));
    if (next === undefined) break;
    at = next;
  }
  return out;
}

test("schedule expression - cron minutes and hours: values, lists, ranges and steps", () => {
  assert.deepEqual(fires("cron(0/15 * * * ? *)", "2026-01-01T00:07:00Z", 3), [
    "2026-01-01T00:15:00.000Z",
    "2026-01-01T00:30:00.000Z",
    "2026-01-01T00:45:00.000Z",
  ]);
  assert.deepEqual(fires("cron(*/20 9-10 * * ? *)", "2026-01-01T00:00:00Z", 4), [
    "2026-01-01T09:00:00.000Z",
    "2026-01-01T09:20:00.000Z",
    "2026-01-01T09:40:00.000Z",
    "2026-01-01T10:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(10-30/10,59 23 * * ? *)", "2026-01-01T23:15:00Z", 4), [
    "2026-01-01T23:20:00.000Z",
    "2026-01-01T23:30:00.000Z",
    "2026-01-01T23:59:00.000Z",
    "2026-01-02T23:10:00.000Z",
  ]);
  // A range that wraps past midnight.
  assert.deepEqual(fires("cron(0 23-1 * * ? *)", "2026-01-01T12:00:00Z", 3), [
    "2026-01-01T23:00:00.000Z",
    "2026-01-02T00:00:00.000Z",
    "2026-01-02T01:00:00.000Z",
  ]);
});

test("schedule expression - cron day fields: names, ranges, ? and AWS's 1-based weekdays", () => {
  // 2026-01-01 is a Thursday. MON-FRI are 2-6 in AWS numbering.
  assert.deepEqual(fires("cron(0 12 ? * MON-FRI *)", "2026-01-01T13:00:00Z", 3), [
    "2026-01-02T12:00:00.000Z",
    "2026-01-05T12:00:00.000Z",
    "2026-01-06T12:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 12 ? * 1,7 *)", "2026-01-01T00:00:00Z", 2), [
    "2026-01-03T12:00:00.000Z",
    "2026-01-04T12:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 12 ? * fri-mon *)", "2026-01-01T00:00:00Z", 4), [
    "2026-01-02T12:00:00.000Z",
    "2026-01-03T12:00:00.000Z",
    "2026-01-04T12:00:00.000Z",
    "2026-01-05T12:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 0 1,15 JAN-FEB,dec ? *)", "2026-01-10T00:00:00Z", 4), [
    "2026-01-15T00:00:00.000Z",
    "2026-02-01T00:00:00.000Z",
    "2026-02-15T00:00:00.000Z",
    "2026-12-01T00:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 0 29 2 ? *)", "2026-01-01T00:00:00Z", 2), [
    "2028-02-29T00:00:00.000Z",
    "2032-02-29T00:00:00.000Z",
  ]);
});

test("schedule expression - cron L, W and # in the day fields", () => {
  assert.deepEqual(fires("cron(0 9 L * ? *)", "2026-01-01T00:00:00Z", 2), [
    "2026-01-31T09:00:00.000Z",
    "2026-02-28T09:00:00.000Z",
  ]);
  // The last weekday: 2026-01-31 is a Saturday, so Friday the 30th.
  assert.deepEqual(fires("cron(0 9 LW * ? *)", "2026-01-01T00:00:00Z", 2), [
    "2026-01-30T09:00:00.000Z",
    "2026-02-27T09:00:00.000Z",
  ]);
  // 2026-02-15 is a Sunday: the nearest weekday is Monday the 16th.
  assert.deepEqual(fires("cron(0 9 15W * ? *)", "2026-02-01T00:00:00Z", 1), [
    "2026-02-16T09:00:00.000Z",
  ]);
  // 6L: the last Friday; 2#1: the first Monday; L alone: the last day of the week, Saturday.
  assert.deepEqual(fires("cron(0 9 ? * 6L *)", "2026-01-01T00:00:00Z", 2), [
    "2026-01-30T09:00:00.000Z",
    "2026-02-27T09:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 9 ? * MON#1 *)", "2026-01-01T00:00:00Z", 2), [
    "2026-01-05T09:00:00.000Z",
    "2026-02-02T09:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 9 ? * 3#2 *)", "2026-01-01T00:00:00Z", 1), [
    "2026-01-13T09:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 9 ? * L *)", "2026-01-01T00:00:00Z", 2), [
    "2026-01-03T09:00:00.000Z",
    "2026-01-10T09:00:00.000Z",
  ]);
});

test("schedule expression - cron year field, and no fire after the last year", () => {
  assert.deepEqual(fires("cron(0 0 1 JAN ? 2027,2030-2031)", "2026-06-01T00:00:00Z", 4), [
    "2027-01-01T00:00:00.000Z",
    "2030-01-01T00:00:00.000Z",
    "2031-01-01T00:00:00.000Z",
    undefined,
  ]);
  assert.equal(
    parseScheduleExpression("cron(0 0 * * ? 2026)").nextAfter(Date.parse("2027-01-01T00:00:00Z")),
    undefined,
  );
});

test("schedule expression - cron in a time zone", () => {
  // Berlin is UTC+1 in winter and UTC+2 in summer.
  assert.deepEqual(fires("cron(0 9 * * ? *)", "2026-01-01T00:00:00Z", 1, "Europe/Berlin"), [
    "2026-01-01T08:00:00.000Z",
  ]);
  assert.deepEqual(fires("cron(0 9 * * ? *)", "2026-07-01T00:00:00Z", 1, "Europe/Berlin"), [
    "2026-07-01T07:00:00.000Z",
  ]);
  // Kolkata is UTC+05:30: the day is the local one.
  assert.deepEqual(fires("cron(0 1 ? * MON *)", "2026-01-01T00:00:00Z", 1, "Asia/Kolkata"), [
    "2026-01-04T19:30:00.000Z",
  ]);
});

test("schedule expression - DST: a 02:30 run is skipped on the spring-forward day and runs once on fall-back", () => {
  // New York: 2026-03-08 02:00 EST jumps to 03:00 EDT; 2026-11-01 02:00 EDT falls back to 01:00 EST.
  assert.deepEqual(fires("cron(30 2 * * ? *)", "2026-03-07T00:00:00Z", 3, "America/New_York"), [
    "2026-03-07T07:30:00.000Z",
    "2026-03-09T06:30:00.000Z",
    "2026-03-10T06:30:00.000Z",
  ]);
  assert.deepEqual(fires("cron(30 1 * * ? *)", "2026-10-31T00:00:00Z", 3, "America/New_York"), [
    "2026-10-31T05:30:00.000Z",
    "2026-11-01T05:30:00.000Z",
    "2026-11-02T06:30:00.000Z",
  ]);
  // An hourly schedule on the fall-back day: 01:00 fires on its first pass only.
  assert.deepEqual(fires("cron(0 * * * ? *)", "2026-11-01T03:30:00Z", 3, "America/New_York"), [
    "2026-11-01T04:00:00.000Z",
    "2026-11-01T05:00:00.000Z",
    "2026-11-01T07:00:00.000Z",
  ]);
  // From between the two passes, the second pass does not fire either.
  assert.equal(
    iso(
      parseScheduleExpression("cron(30 1 * * ? *)", "America/New_York").nextAfter(
        Date.parse("2026-11-01T06:10:00Z"),
      ),
    ),
    "2026-11-02T06:30:00.000Z",
  );
});

test("schedule expression - rate is anchored and counts fixed durations", () => {
  const anchorMs = Date.parse("2026-03-08T06:00:00Z");
  assert.deepEqual(fires("rate(5 minutes)", "2026-03-08T06:07:00Z", 2, "UTC", anchorMs), [
    "2026-03-08T06:10:00.000Z",
    "2026-03-08T06:15:00.000Z",
  ]);
  // Before the anchor the first fire is the anchor itself, never earlier.
  assert.deepEqual(fires("rate(1 hour)", "2026-01-01T00:00:00Z", 2, "UTC", anchorMs), [
    "2026-03-08T06:00:00.000Z",
    "2026-03-08T07:00:00.000Z",
  ]);
  // A day is 24 hours, across the New York spring-forward (local 01:00 EST, then 02:00 EDT).
  assert.deepEqual(fires("rate(1 day)", "2026-03-08T06:00:00Z", 1, "America/New_York", anchorMs), [
    "2026-03-09T06:00:00.000Z",
  ]);
  // second(s) is Relaybus's own unit; singular and plural are both accepted.
  assert.deepEqual(fires("rate(2 seconds)", "2026-03-08T06:00:00Z", 2, "UTC", anchorMs), [
    "2026-03-08T06:00:02.000Z",
    "2026-03-08T06:00:04.000Z",
  ]);
  assert.deepEqual(fires("rate(1 minutes)", "2026-03-08T06:00:00Z", 1, "UTC", anchorMs), [
    "2026-03-08T06:01:00.000Z",
  ]);
  assert.match(
    parseScheduleExpression("rate(3 days)", "UTC", { anchorMs }).description,
    /every 3 days from 2026-03-08/,
  );
});

test("schedule expression - at fires once, at the wall-clock time of its zone", () => {
  assert.deepEqual(fires("at(2026-03-01T09:00:00)", "2026-01-01T00:00:00Z", 2, "Europe/Berlin"), [
    "2026-03-01T08:00:00.000Z",
    undefined,
  ]);
  assert.deepEqual(fires("at(2026-03-01T09:00:00)", "2026-03-01T09:00:00Z", 1), [undefined]);
  // A time the clocks show twice: the first pass (EDT).
  assert.deepEqual(
    fires("at(2026-11-01T01:30:00)", "2026-01-01T00:00:00Z", 1, "America/New_York"),
    ["2026-11-01T05:30:00.000Z"],
  );
});

test("schedule expression - errors name the expression, the field and the fix", () => {
  const cases: [string, RegExp][] = [
    ["cron(0 25 * * ? *)", /^cron\(0 25 \* \* \? \*\): field 2 \(hours\) 25 is out of range 0-23$/],
    ["cron(60 * * * ? *)", /field 1 \(minutes\) 60 is out of range 0-59/],
    ["cron(0 0 32 * ? *)", /field 3 \(day-of-month\) 32 is out of range 1-31/],
    ["cron(0 0 * 13 ? *)", /field 4 \(month\) 13 is out of range 1-12/],
    ["cron(0 0 ? * 8 *)", /field 5 \(day-of-week\) 8 is out of range 1-7/],
    ["cron(0 0 1 1 ? 1969)", /field 6 \(year\) 1969 is out of range 1970-2199/],
    [
      "cron(0 0 ? * FUNDAY *)",
      /field 5 \(day-of-week\) "FUNDAY" is not a number, or a name SUN-SAT/,
    ],
    ["cron(0 0 ? JANUARY * *)", /field 4 \(month\) "JANUARY" is not a number, or a name JAN-DEC/],
    [
      "cron(0/0 * * * ? *)",
      /field 1 \(minutes\) "0\/0": the step after \/ must be a whole number from 1/,
    ],
    ["cron(1,,2 * * * ? *)", /field 1 \(minutes\) "1,,2" has an empty list item/],
    ["cron(0 0 ? * 2#6 *)", /field 5 \(day-of-week\) 2#6: the week after # must be 1 to 5/],
    ["cron(0 0 L-2 * ? *)", /field 3 \(day-of-month\) L-2: L-n is not AWS syntax/],
    [
      "cron(0 12 * * * *)",
      /exactly one of field 3 \(day-of-month\) and field 5 \(day-of-week\) must be \?/,
    ],
    [
      "cron(0 12 ? * ? *)",
      /exactly one of field 3 \(day-of-month\) and field 5 \(day-of-week\) must be \?/,
    ],
    [
      "cron(0 12 * * ?)",
      /expected 6 fields \(minutes hours day-of-month month day-of-week year\), got 5/,
    ],
    [
      "cron(0 12 30 FEB ? *)",
      /field 3 \(day-of-month\) names no day that the months of field 4 have/,
    ],
    ["rate(0 minutes)", /^rate\(0 minutes\): the value must be a whole number from 1$/],
    ["rate(5 weeks)", /unit "weeks" is not one of minute\(s\), hour\(s\), day\(s\), second\(s\)/],
    ["rate(five minutes)", /expected rate\(value unit\)/],
    ["at(2026-02-30T00:00:00)", /^at\(2026-02-30T00:00:00\): day 30 is out of range 1-28$/],
    ["at(2026-02-01 00:00:00)", /expected at\(yyyy-mm-ddThh:mm:ss\)/],
    ["every day at noon", /is not cron\(\.\.\.\), rate\(\.\.\.\) or at\(\.\.\.\)/],
  ];
  for (const [expression, message] of cases) {
    assert.throws(() => parseScheduleExpression(expression), { message }, expression);
  }
  assert.throws(
    () => parseScheduleExpression("at(2026-03-08T02:30:00)", "America/New_York"),
    /02:30:00 does not exist on 2026-03-08 in America\/New_York/,
  );
  assert.throws(
    () => parseScheduleExpression("rate(1 minute)", "Mars/Olympus"),
    /time zone "Mars\/Olympus" is not an IANA time zone name/,
  );
});

test("missed runs - the last fire of a long span is found without walking every fire", () => {
  const schedule = parseScheduleExpression("cron(* * * * ? *)");
  let calls = 0;
  const counted = { ...schedule, nextAfter: (ms: number) => (calls++, schedule.nextAfter(ms)) };
  const from = Date.parse("2026-01-01T00:00:00Z");
  const until = Date.parse("2026-02-01T00:00:30Z");
  assert.equal(iso(lastFireBetween(counted, from, until)), "2026-02-01T00:00:00.000Z");
  assert.ok(calls < 10, `${calls} calls for a month of minute fires`);
  assert.equal(lastFireBetween(schedule, until, until + 20_000), undefined);
  const daily = parseScheduleExpression("cron(0 6 * * ? *)");
  assert.equal(iso(lastFireBetween(daily, from, until)), "2026-01-31T06:00:00.000Z");
});

test("missed runs - planStart: first run, late fires, skip and once", () => {
  const rate = parseScheduleExpression("rate(1 hour)", "UTC", {
    anchorMs: Date.parse("2026-01-01T00:00:00Z"),
  });
  const nowMs = Date.parse("2026-01-01T05:10:00Z");
  const base = { startAtMs: undefined, nowMs, missedAfterMs: 60_000 };
  assert.deepEqual(planStart(rate, { ...base, positionMs: undefined, policy: "once" }), {
    afterMs: nowMs - 1,
  });
  const position = Date.parse("2026-01-01T00:00:00Z");
  const skipped = planStart(rate, { ...base, positionMs: position, policy: "skip" });
  assert.equal(skipped.catchUpMs, undefined);
  assert.equal(iso(rate.nextAfter(skipped.afterMs)), "2026-01-01T06:00:00.000Z");
  const once = planStart(rate, { ...base, positionMs: position, policy: "once" });
  assert.equal(iso(once.catchUpMs), "2026-01-01T05:00:00.000Z");
  assert.equal(iso(rate.nextAfter(once.afterMs)), "2026-01-01T06:00:00.000Z");
  // Ten minutes late is late, not missed, when missedAfterMs allows it.
  const late = planStart(rate, {
    ...base,
    missedAfterMs: 15 * 60_000,
    positionMs: Date.parse("2026-01-01T04:00:00Z"),
    policy: "skip",
  });
  assert.equal(late.missed, undefined);
  assert.equal(iso(rate.nextAfter(late.afterMs)), "2026-01-01T05:00:00.000Z");
});

/**
 * The reference: node-cron's own matcher, asked minute by minute, keeping only the first
 * pass of a wall time the clocks show twice. The walk in cron-schedule.ts must agree.
 */
function referenceNext(
  pattern: string,
  timezone: string,
  afterMs: number,
  horizonMs: number,
): number | undefined {
  const task = createTask(pattern, () => {}, { timezone });
  void task.destroy();
  const firstPass = (t: number) => {
    const wall = JSON.stringify(wallTimeAt(t, timezone));
    return (
      JSON.stringify(wallTimeAt(t - 3_600_000, timezone)) !== wall &&
      JSON.stringify(wallTimeAt(t - 1_800_000, timezone)) !== wall
    );
  };
  for (
    let t = Math.floor(afterMs / 60_000) * 60_000 + 60_000;
    t <= afterMs + horizonMs;
    t += 60_000
  ) {
    if (task.match(new Date(t)) && firstPass(t)) return t;
  }
  return undefined;
}

test("schedule expression - cron agrees with node-cron's matcher around DST transitions (property)", () => {
  const transitions: [string, string][] = [
    ["America/New_York", "2026-03-08T07:00:00Z"],
    ["America/New_York", "2026-11-01T06:00:00Z"],
    ["Europe/Berlin", "2026-03-29T01:00:00Z"],
    ["Europe/Berlin", "2026-10-25T01:00:00Z"],
    ["Australia/Lord_Howe", "2026-10-03T15:00:00Z"],
    ["Asia/Kolkata", "2026-03-08T07:00:00Z"],
  ];
  const subset = (min: number, max: number) =>
    fc
      .uniqueArray(fc.integer({ min, max }), { minLength: 1, maxLength: 4 })
      .map((values) => values.sort((a, b) => a - b));
  fc.assert(
    fc.property(
      fc.constantFrom(...transitions),
      fc.integer({ min: -2 * 86_400_000, max: 2 * 86_400_000 }),
      subset(0, 59),
      fc
        .uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 3, maxLength: 8 })
        .map((v) => v.sort((a, b) => a - b)),
      fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 2, maxLength: 7 }), {
        nil: undefined,
      }),
      ([timezone, transition], shiftMs, minutes, hours, weekdays) => {
        const afterMs = Date.parse(transition) + shiftMs;
        const dow = weekdays === undefined ? "?" : weekdays.join(",");
        const expression = `cron(${minutes.join(",")} ${hours.join(",")} ${weekdays === undefined ? "*" : "?"} * ${dow} *)`;
        const pattern = `0 ${minutes.join(",")} ${hours.join(",")} * * ${weekdays === undefined ? "*" : weekdays.map((d) => d - 1).join(",")}`;
        const actual = parseScheduleExpression(expression, timezone).nextAfter(afterMs);
        const expected = referenceNext(pattern, timezone, afterMs, 8 * 86_400_000);
        assert.equal(
          iso(actual),
          iso(expected),
          `${expression} in ${timezone} after ${iso(afterMs)}`,
        );
      },
    ),
    { numRuns: 40 },
  );
});
