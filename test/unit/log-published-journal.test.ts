// The publish meter's journal must answer exactly what summing the log's events would, or
// nothing (the meter then reads the log): never a wrong count, never an event twice.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { createPublishedJournal } from "../../src/log/sqlite/published-journal.js";
import { HOUR_MS, type PublishedTally } from "../../src/log/usage-store.js";

interface Logged {
  offset: number;
  receivedAtMs: number;
  units: number;
}

const START = Date.UTC(2025, 0, 15, 9, 59, 0);

/** The tally by its definition, written out here (the journal and tallyLogEvents share their code). */
function expectedTally(afterOffset: number, events: readonly Logged[]): PublishedTally {
  const byHour = new Map<number, { hourMs: number; events: number; units: number }>();
  for (const event of events) {
    const hourMs = event.receivedAtMs - (event.receivedAtMs % HOUR_MS);
    const hour = byHour.get(hourMs) ?? { hourMs, events: 0, units: 0 };
    hour.events += 1;
    hour.units += event.units;
    byHour.set(hourMs, hour);
  }
  const hours = [...byHour.values()].sort((a, b) => a.hourMs - b.hourMs);
  return { throughOffset: events.length === 0 ? afterOffset : events[events.length - 1]!.offset, events: events.length, hours };
}

/** Commits of 1 to 40 events, each with one receive time, mostly later than the last, sometimes an hour on or a second back. */
const commits = fc.array(
  fc.record({ size: fc.integer({ min: 1, max: 40 }), stepMs: fc.oneof(fc.integer({ min: 0, max: 90_000 }), fc.constant(HOUR_MS), fc.constant(-1_000)) }),
  { minLength: 1, maxLength: 60 },
);

test("published journal - a tally is the sum of the logged events it covers, or undefined when it does not hold the position", () => {
  fc.assert(
    fc.property(
      commits,
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 200 })), { minLength: 1, maxLength: 20 }),
      (batches, unitsSeed, asks) => {
        const journal = createPublishedJournal();
        const logged: Logged[] = [];
        let offset = 1;
        let atMs = START;
        for (const { size, stepMs } of batches) {
          atMs += stepMs;
          for (let i = 0; i < size; i++) {
            const units = 1 + ((offset * unitsSeed) % 3);
            journal.add("orders", offset, atMs, units);
            logged.push({ offset, receivedAtMs: atMs, units });
            offset++;
          }
        }
        for (const [position, limit] of asks) {
          const afterOffset = position % (offset + 2);
          const answer = journal.tally("orders", afterOffset, limit);
          if (afterOffset >= offset) {
            assert.equal(answer, undefined, `after ${afterOffset}: past the end`);
            continue;
          }
          assert.notEqual(answer, undefined, `after ${afterOffset}: held`);
          const covered = logged.filter((e) => e.offset > afterOffset).slice(0, limit);
          assert.deepEqual(answer, expectedTally(afterOffset, covered), `after ${afterOffset}, limit ${limit}`);
        }
        assert.equal(journal.tally("elsewhere", 0, 10), undefined, "a bus it never saw");
      },
    ),
    { numRuns: 400 },
  );
});

test("published journal - it grows while the meter is behind and keeps every untallied event up to its most", () => {
  const journal = createPublishedJournal();
  // 100,000 events (past the first capacity of 4,096) and no tally yet: all must still be held.
  for (let offset = 1; offset <= 100_000; offset++) journal.add("orders", offset, START + offset, 1);
  const first = journal.tally("orders", 0, 4_000);
  assert.deepEqual(first?.throughOffset, 4_000);
  assert.equal(first?.events, 4_000);
  const last = journal.tally("orders", 96_000, 10_000);
  assert.equal(last?.throughOffset, 100_000);
  assert.equal(last?.events, 4_000);
  assert.equal(last?.hours.reduce((sum, hour) => sum + hour.units, 0), 4_000);
});

test("published journal - past its most it lets the oldest go, and asking for them answers undefined", () => {
  const journal = createPublishedJournal();
  for (let offset = 1; offset <= 140_000; offset++) journal.add("orders", offset, START, 1);
  // 131,072 held at most: offsets 8,929 to 140,000.
  assert.equal(journal.tally("orders", 0, 10), undefined);
  assert.equal(journal.tally("orders", 8_927, 10), undefined);
  assert.deepEqual(journal.tally("orders", 8_928, 2), { throughOffset: 8_930, events: 2, hours: [{ hourMs: Date.UTC(2025, 0, 15, 9), events: 2, units: 2 }] });
});

test("published journal - a gap in offsets starts it again, and clear forgets every bus", () => {
  const journal = createPublishedJournal();
  for (let offset = 1; offset <= 10; offset++) journal.add("orders", offset, START, 1);
  journal.add("orders", 20, START, 2);
  assert.equal(journal.tally("orders", 5, 10), undefined, "the events before the gap are gone");
  assert.deepEqual(journal.tally("orders", 19, 10), { throughOffset: 20, events: 1, hours: [{ hourMs: Date.UTC(2025, 0, 15, 9), events: 1, units: 2 }] });
  assert.deepEqual(journal.tally("orders", 20, 10), { throughOffset: 20, events: 0, hours: [] }, "nothing yet after the end");
  journal.clear();
  assert.equal(journal.tally("orders", 19, 10), undefined);
});
