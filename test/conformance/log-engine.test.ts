/**
 * The conformance test of the storage seam's event log (`LogEngine`, src/log/log-engine.ts):
 * every engine in log-engine-harness.ts passes the same tests, on real parts. Where the
 * engines' documented semantics differ (a repeated event id, commits per call) the tests
 * branch on the engine's capabilities. What only one engine has (SQLite's full disk, writer
 * and checkpointer threads, group-commit sizing) is tested in test/integration/log-*.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isRelaybusError } from "../../src/errors.js";
import type { LogEngine } from "../../src/log/log-engine.js";
import type { CloudEvent, EventToAppend, JsonValue, StoredEvent } from "../../src/types.js";
import { LOG_ENGINE_HARNESSES } from "./log-engine-harness.js";

function makeEvent(bus: string, id: string, data: JsonValue = { n: 1 }): EventToAppend {
  const event: CloudEvent = { specversion: "1.0", id, source: "test.source", type: "test.type", data };
  const json = JSON.stringify(event);
  const sizeBytes = Buffer.byteLength(json);
  return { bus, event, json, sizeBytes, units: Math.max(1, Math.ceil(sizeBytes / 65_536)) };
}

/** A clock the test sets. */
function steppedClock(startMs: number) {
  const clock = { now: startMs, nowMs: () => clock.now };
  return clock;
}

/** Every event of `bus`, read a page at a time. */
async function readAll(log: LogEngine, bus: string, pageSize = 1_000): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (;;) {
    const page = await log.read(bus, all.at(-1)?.offset ?? 0, pageSize);
    assert.ok(page.length <= pageSize, `read returned ${page.length} events for a limit of ${pageSize}`);
    if (page.length === 0) return all;
    all.push(...page);
  }
}

const ids = (events: readonly { event: CloudEvent }[]) => events.map((e) => e.event.id);
const offsets = (events: readonly StoredEvent[]) => events.map((e) => e.offset);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

for (const harness of LOG_ENGINE_HARNESSES) {
  const { name, capabilities } = harness;
  const title = (behaviour: string) => `log engine [${name}] - ${behaviour}`;
  const skip = (await harness.skipReason?.()) ?? false;

  describe(`log engine [${name}]`, { skip }, () => {
    test(title("offsets start at 1 and are gap-free per bus"), async (t) => {
      const log = await harness.open(t);
      const first = await log.append([makeEvent("orders", "a"), makeEvent("payments", "b"), makeEvent("orders", "c")]);
      const second = await log.append([makeEvent("orders", "d")]);
      assert.deepEqual(
        first.map((e) => [e.bus, e.offset]),
        [
          ["orders", 1],
          ["payments", 1],
          ["orders", 2],
        ],
      );
      assert.deepEqual(offsets(second), [3]);
      assert.equal(await log.lastOffset("orders"), 3);
      assert.equal(await log.lastOffset("payments"), 1);
      assert.equal(await log.lastOffset("nothing"), 0);
      assert.deepEqual(offsets(await log.read("orders", 0, 10)), [1, 2, 3]);
    });

    test(title("bus names differing only in '.', '_' and '-' are distinct buses"), async (t) => {
      const log = await harness.open(t);
      const buses = ["orders.eu", "orders_eu", "orders-eu", "orders_deu", "orders__eu", "a.b_c-d"];
      const stored = await log.append(buses.map((bus) => makeEvent(bus, `in-${bus}`)));
      assert.deepEqual(offsets(stored), buses.map(() => 1));
      for (const bus of buses) {
        assert.deepEqual(ids(await log.read(bus, 0, 10)), [`in-${bus}`], bus);
        assert.equal(await log.count(bus), 1, bus);
        assert.equal(await log.lastOffset(bus), 1, bus);
        assert.equal((await log.findById(bus, `in-${bus}`))?.bus, bus);
      }
    });

    test(title("stored events carry what ingress computed and receivedAtMs from the clock"), async (t) => {
      const clock = steppedClock(1_700_000_000_000);
      const log = await harness.open(t, { clock });
      const plain = makeEvent("orders", "e-1", { total: 120, items: ["x", "é ✓"], nested: { deep: [1, null, true] } });
      // The stored JSON is kept as given (here not JSON.stringify's output), never re-serialised.
      const spacedEvent: CloudEvent = { specversion: "1.0", id: "e-2", source: "s", type: "t", data: { a: 1 } };
      const spacedJson = JSON.stringify(spacedEvent, null, 2);
      const spaced: EventToAppend = {
        bus: "orders",
        event: spacedEvent,
        json: spacedJson,
        sizeBytes: Buffer.byteLength(spacedJson),
        units: 1,
      };
      const large = makeEvent("orders", "e-3", { blob: "y".repeat(70_000) });
      assert.equal(large.units, 2);
      const inputs = [plain, spaced, large];

      const stored = await log.append(inputs);
      clock.now += 1_000;
      const read = await log.read("orders", 0, 10);
      const last = await log.readLast("orders", 10);
      const found = await Promise.all(inputs.map((e) => log.findById("orders", e.event.id)));
      for (const [source, events] of Object.entries({ append: stored, read, readLast: last, findById: found })) {
        assert.equal(events.length, 3, source);
        events.forEach((event, i) => {
          const input = inputs[i] as EventToAppend;
          assert.ok(event, `${source}[${i}]`);
          assert.equal(event.bus, "orders", `${source}[${i}].bus`);
          assert.equal(event.offset, i + 1, `${source}[${i}].offset`);
          assert.deepEqual(event.event, input.event, `${source}[${i}].event`);
          assert.equal(event.json, input.json, `${source}[${i}].json`);
          assert.equal(event.sizeBytes, input.sizeBytes, `${source}[${i}].sizeBytes`);
          assert.equal(event.units, input.units, `${source}[${i}].units`);
          assert.equal(event.receivedAtMs, 1_700_000_000_000, `${source}[${i}].receivedAtMs`);
        });
      }
      const [later] = await log.append([makeEvent("orders", "e-4")]);
      assert.equal(later?.receivedAtMs, 1_700_000_001_000);
      assert.equal((await log.findById("orders", "e-4"))?.receivedAtMs, 1_700_000_001_000);
    });

    test(title("append keeps the order given in a call, and each concurrent call's order per bus"), async (t) => {
      const log = await harness.open(t);
      // One call, buses interleaved: returned in the order given, offsets in that order per bus.
      const mixed = Array.from({ length: 12 }, (_, i) => makeEvent(["a", "b", "c"][i % 3] as string, `m${i}`));
      const stored = await log.append(mixed);
      assert.deepEqual(ids(stored), mixed.map((e) => e.event.id));
      assert.deepEqual(
        stored.map((e) => [e.bus, e.offset]),
        mixed.map((e, i) => [e.bus, Math.floor(i / 3) + 1]),
      );

      // Concurrent calls: each gets its own events back in its own order; per bus the log is
      // gap-free and each call's events keep their relative order in it.
      const calls = Array.from({ length: 10 }, (_, c) =>
        Array.from({ length: 6 }, (_, i) => makeEvent(i % 2 ? "a" : "b", `c${c}-${i}`)),
      );
      const results = await Promise.all(calls.map((events) => log.append(events)));
      results.forEach((result, c) => {
        assert.deepEqual(ids(result), ids(calls[c] ?? []), `call ${c}`);
        for (const bus of ["a", "b"]) {
          const mine = result.filter((e) => e.bus === bus);
          const sorted = [...offsets(mine)].sort((x, y) => x - y);
          assert.deepEqual(offsets(mine), sorted, `call ${c} on ${bus}: offsets out of call order`);
        }
      });
      for (const bus of ["a", "b"]) {
        const all = await readAll(log, bus);
        assert.deepEqual(offsets(all), range(1, 4 + 30), `${bus} is gap-free`);
        const byOffset = new Map(all.map((e) => [e.offset, e.event.id]));
        for (const result of results) {
          for (const e of result.filter((r) => r.bus === bus)) {
            assert.equal(byOffset.get(e.offset), e.event.id, `${bus}@${e.offset}: what append returned is what is stored`);
          }
        }
      }
    });

    test(title("onAppend fires after the commit, once per bus per commit, until unsubscribed"), async (t) => {
      const log = await harness.open(t);
      const seen: Array<{ bus: string; commits: number; read: Promise<StoredEvent[]> }> = [];
      const otherSeen: string[] = [];
      const unsubscribe = log.onAppend((bus) => {
        // Called after the commit: the commit is counted and the events are readable.
        seen.push({ bus, commits: log.stats().commits, read: log.read(bus, 0, 100) });
      });
      log.onAppend((bus) => otherSeen.push(bus));

      await log.append([makeEvent("a", "1"), makeEvent("b", "2"), makeEvent("a", "3")]);
      assert.deepEqual(seen.map((s) => s.bus).sort(), ["a", "b"]);
      assert.deepEqual(seen.map((s) => s.commits), [1, 1]);
      for (const s of seen) {
        assert.deepEqual(ids(await s.read), s.bus === "a" ? ["1", "3"] : ["2"], `readable when ${s.bus} fired`);
      }

      seen.length = 0;
      await Promise.all([log.append([makeEvent("a", "4"), makeEvent("b", "5")]), log.append([makeEvent("a", "6")])]);
      const commits = log.stats().commits;
      const pairs = seen.map((s) => `${s.bus}@${s.commits}`);
      assert.equal(new Set(pairs).size, pairs.length, `a bus fired twice for one commit: ${pairs.join(", ")}`);
      assert.equal(seen.filter((s) => s.bus === "b").length, 1);
      const aFires = seen.filter((s) => s.bus === "a").length;
      if (capabilities.commitPerAppend) {
        assert.equal(commits, 3);
        assert.equal(aFires, 2);
      } else {
        assert.ok(commits >= 2 && commits <= 3, `${commits} commits`);
        assert.equal(aFires, commits - 1, "a fires once per commit that touched it");
      }
      for (const s of seen) assert.ok(s.commits > 1, `${s.bus} fired before its commit was counted`);
      // Every read a listener started is awaited: one left pending would reject once the log closes.
      for (const s of seen) assert.ok((await s.read).length > 0, `${s.bus} readable when it fired`);

      unsubscribe();
      const before = seen.length;
      const otherBefore = otherSeen.length;
      await log.append([makeEvent("a", "7")]);
      assert.equal(seen.length, before, "an unsubscribed listener was called");
      assert.deepEqual(otherSeen.slice(otherBefore), ["a"], "the other listener stays subscribed");
    });

    test(title("read pages after an offset; readLast returns the newest, oldest first"), async (t) => {
      const log = await harness.open(t);
      await log.append(Array.from({ length: 10 }, (_, i) => makeEvent("a", `e${i + 1}`)));
      await log.append([makeEvent("b", "other")]);
      assert.deepEqual(offsets(await log.read("a", 3, 4)), [4, 5, 6, 7]);
      assert.deepEqual(ids(await log.read("a", 3, 4)), ["e4", "e5", "e6", "e7"]);
      assert.deepEqual(offsets(await log.read("a", 0, 3)), [1, 2, 3]);
      assert.deepEqual(offsets(await log.read("a", 8, 100)), [9, 10]);
      assert.deepEqual(offsets(await log.read("a", 0, 100)), range(1, 10));
      assert.deepEqual(offsets(await log.read("a", 10, 4)), []);
      assert.deepEqual(offsets(await log.read("a", 50, 4)), []);
      assert.deepEqual(await log.read("missing", 0, 10), []);
      assert.deepEqual(ids(await log.read("b", 0, 10)), ["other"]);

      assert.deepEqual(offsets(await log.readLast("a", 3)), [8, 9, 10]);
      assert.deepEqual(ids(await log.readLast("a", 1)), ["e10"]);
      assert.deepEqual(offsets(await log.readLast("a", 100)), range(1, 10));
      assert.deepEqual(ids(await log.readLast("b", 5)), ["other"]);
      assert.deepEqual(await log.readLast("missing", 3), []);

      assert.equal(await log.count("a"), 10);
      assert.equal(await log.count("b"), 1);
      assert.equal(await log.count("missing"), 0);
      assert.equal(await log.lastOffset("a"), 10);
    });

    test(title("findById finds by CloudEvent id within the bus only"), async (t) => {
      const log = await harness.open(t);
      const longId = `long-${"x".repeat(300)}`;
      const oddIds = ["ünïcødé ✓", "a.b.*.>", "with spaces/and/slashes", "Case", "case", longId, `${longId}-2`];
      await log.append([makeEvent("a", "x"), makeEvent("b", "y"), ...oddIds.map((id) => makeEvent("a", id))]);
      assert.equal((await log.findById("a", "x"))?.offset, 1);
      assert.equal((await log.findById("b", "y"))?.offset, 1);
      assert.equal(await log.findById("b", "x"), undefined, "an id of another bus");
      assert.equal(await log.findById("a", "y"), undefined, "an id of another bus");
      assert.equal(await log.findById("a", "nope"), undefined);
      assert.equal(await log.findById("missing", "x"), undefined);
      for (const [i, id] of oddIds.entries()) {
        const found = await log.findById("a", id);
        assert.equal(found?.event.id, id, `findById(${JSON.stringify(id.slice(0, 40))})`);
        assert.equal(found?.offset, i + 2);
        assert.equal(found?.bus, "a");
      }
    });

    test(title("firstOffsetReceivedFrom finds where a time window starts"), async (t) => {
      const clock = steppedClock(100);
      const log = await harness.open(t, { clock });
      for (const time of [100, 100, 200, 300, 300, 300, 500]) {
        clock.now = time;
        await log.append([makeEvent("orders", `at-${time}-${Math.random()}`)]);
      }
      await log.append([makeEvent("other", "late")]);
      const first = (ms: number) => log.firstOffsetReceivedFrom("orders", ms);
      assert.equal(await first(0), 1);
      assert.equal(await first(100), 1);
      assert.equal(await first(101), 3);
      assert.equal(await first(200), 3);
      assert.equal(await first(300), 4);
      assert.equal(await first(301), 7);
      assert.equal(await first(500), 7);
      assert.equal(await first(501), undefined);
      assert.equal(await log.firstOffsetReceivedFrom("other", 500), 1);
      assert.equal(await log.firstOffsetReceivedFrom("nobody", 0), undefined);

      // Pruned events are not in the log any more: the window starts at the first one left.
      assert.equal(await log.pruneOlderThan(250, () => Number.MAX_SAFE_INTEGER), 3);
      assert.equal(await first(0), 4);
      assert.equal(await first(301), 7);
    });

    test(title("pruneOlderThan deletes old events, never from keepFrom on, and never reuses offsets"), async (t) => {
      const clock = steppedClock(1_000);
      const log = await harness.open(t, { clock });
      await log.append(Array.from({ length: 10 }, (_, i) => makeEvent("a", `old${i}`)));
      await log.append([makeEvent("b", "old-b")]);
      clock.now = 5_000;
      await log.append(Array.from({ length: 5 }, (_, i) => makeEvent("a", `new${i}`)));

      // The dispatcher has passed offset 5 of "a" and nothing of "b".
      const asked = new Set<string>();
      const deleted = await log.pruneOlderThan(3_000, (bus) => {
        asked.add(bus);
        return bus === "a" ? 6 : 1;
      });
      assert.equal(deleted, 5);
      assert.ok(asked.has("a"), "keepFrom was not asked about a");
      assert.equal(await log.count("a"), 10);
      assert.equal(await log.count("b"), 1);
      assert.deepEqual(offsets(await log.read("a", 0, 1)), [6]);
      assert.deepEqual(offsets(await log.read("a", 2, 2)), [6, 7]);
      assert.deepEqual(offsets(await log.readLast("a", 100)), range(6, 15));
      assert.equal(await log.findById("a", "old0"), undefined, "a pruned event is not found");
      assert.equal((await log.findById("a", "old5"))?.offset, 6);
      assert.equal(await log.lastOffset("a"), 15);

      // Passed everything: only the events older than the cutoff go.
      assert.equal(await log.pruneOlderThan(3_000, () => Number.MAX_SAFE_INTEGER), 6);
      assert.deepEqual(ids(await log.read("a", 0, 100)), ["new0", "new1", "new2", "new3", "new4"]);
      assert.equal(await log.count("b"), 0);
      assert.equal(await log.pruneOlderThan(3_000, () => Number.MAX_SAFE_INTEGER), 0, "nothing left to prune");

      // All gone: offsets still never restart, not even after a reopen.
      assert.equal(await log.pruneOlderThan(10_000, () => Number.MAX_SAFE_INTEGER), 5);
      assert.equal(await log.count("a"), 0);
      assert.deepEqual(await log.read("a", 0, 100), []);
      assert.deepEqual(await log.readLast("a", 100), []);
      assert.equal(await log.lastOffset("a"), 15);
      assert.equal(await log.lastOffset("b"), 1);
      const [next] = await log.append([makeEvent("a", "after")]);
      assert.equal(next?.offset, 16);
      assert.equal(await log.count("a"), 1);
      if (harness.reopen) {
        await log.close();
        const reopened = await harness.reopen(t, log, { clock });
        assert.equal(await reopened.lastOffset("a"), 16);
        assert.equal(await reopened.lastOffset("b"), 1);
        assert.equal(await reopened.count("b"), 0);
        const [again] = await reopened.append([makeEvent("a", "after-reopen"), makeEvent("b", "b-after-reopen")]);
        assert.equal(again?.offset, 17);
        assert.equal((await reopened.findById("b", "b-after-reopen"))?.offset, 2);
      }
    });

    test(title("a reopened engine keeps every event and continues the offsets"), async (t) => {
      if (!harness.reopen) return t.skip(`${name} has no reopen`);
      const clock = steppedClock(2_000_000);
      const first = await harness.open(t, { clock });
      const written = await first.append([makeEvent("a", "1"), makeEvent("a", "2"), makeEvent("b", "3")]);
      await first.close();

      clock.now += 10_000;
      const second = await harness.reopen(t, first, { clock });
      assert.equal(await second.lastOffset("a"), 2);
      assert.equal(await second.lastOffset("b"), 1);
      assert.equal(await second.count("a"), 2);
      const read = await second.read("a", 0, 10);
      assert.deepEqual(ids(read), ["1", "2"]);
      assert.deepEqual(read, written.slice(0, 2), "the events as they were stored");
      assert.equal((await second.findById("b", "3"))?.offset, 1);
      assert.equal(await second.firstOffsetReceivedFrom("a", 2_000_000), 1);
      const [next] = await second.append([makeEvent("a", "4")]);
      assert.equal(next?.offset, 3);
      assert.equal(next?.receivedAtMs, 2_010_000);
      if (capabilities.deduplicatesEventIds) {
        // The duplicate window outlives the process that wrote the event.
        const [repeated] = await second.append([makeEvent("a", "1")]);
        assert.equal(repeated?.offset, 1);
        assert.equal(await second.count("a"), 3);
      }
    });

    test(title("close commits what is queued, later appends reject ServiceUnavailable"), async (t) => {
      const log = await harness.open(t);
      const queued = log.append([makeEvent("a", "queued")]);
      await log.close();
      assert.deepEqual(offsets(await queued), [1]);
      await assert.rejects(log.append([makeEvent("a", "late")]), (error: unknown) => {
        assert.ok(isRelaybusError(error, "ServiceUnavailable"), `a ServiceUnavailable RelaybusError, got ${String(error)}`);
        return true;
      });
      if (harness.reopen) {
        const reopened = await harness.reopen(t, log);
        assert.equal(await reopened.count("a"), 1);
        assert.equal(await reopened.findById("a", "late"), undefined);
      }
    });

    test(title("an empty append resolves [] without a commit"), async (t) => {
      const log = await harness.open(t);
      const fired: string[] = [];
      log.onAppend((bus) => fired.push(bus));
      assert.deepEqual(await log.append([]), []);
      assert.equal(log.stats().commits, 0);
      assert.equal(log.stats().committedEvents, 0);
      assert.deepEqual(fired, []);
      await log.append([makeEvent("a", "1")]);
      assert.deepEqual(await log.append([]), []);
      assert.equal(log.stats().commits, 1);
      assert.equal(log.stats().committedEvents, 1);
      assert.deepEqual(fired, ["a"]);
    });

    test(title("an id appended again to the same bus: " + (capabilities.deduplicatesEventIds ? "stored once" : "stored again")), async (t) => {
      const clock = steppedClock(1_000);
      const log = await harness.open(t, { clock });
      const fired: string[] = [];
      log.onAppend((bus) => fired.push(bus));
      const [original] = await log.append([makeEvent("a", "dup", { v: 1 })]);
      assert.equal(original?.offset, 1);
      clock.now = 2_000;
      const [again] = await log.append([makeEvent("a", "dup", { v: 2 })]);
      const [otherBus] = await log.append([makeEvent("b", "dup", { v: 3 })]);
      assert.equal(otherBus?.offset, 1, "the same id on another bus is another event");
      assert.deepEqual((await log.findById("b", "dup"))?.event.data, { v: 3 });
      if (capabilities.deduplicatesEventIds) {
        // Resolved with the event as first stored: its offset, receive time and content.
        assert.deepEqual(again, original, "append resolves with the event as first stored");
        assert.equal(await log.count("a"), 1);
        assert.equal(await log.lastOffset("a"), 1);
        assert.deepEqual((await log.findById("a", "dup"))?.event.data, { v: 1 });
        // The call that only repeated an id stored nothing: no commit, no event, no onAppend.
        const { commits, committedEvents } = log.stats();
        assert.deepEqual({ commits, committedEvents, fired }, { commits: 2, committedEvents: 2, fired: ["a", "b"] });
        // A call mixing a repeated id and a new one: the repeated one as first stored, the new one stored.
        const mixed = await log.append([makeEvent("a", "dup", { v: 4 }), makeEvent("a", "fresh")]);
        assert.deepEqual(
          mixed.map((e) => [e.event.id, e.offset, e.receivedAtMs]),
          [
            ["dup", 1, 1_000],
            ["fresh", 2, 2_000],
          ],
        );
        assert.equal(await log.count("a"), 2);
        assert.deepEqual(ids(await log.read("a", 0, 10)), ["dup", "fresh"]);
        assert.equal(log.stats().committedEvents, 3, "only the new event counts as committed");
      } else {
        assert.equal(again?.offset, 2);
        assert.equal(again?.receivedAtMs, 2_000);
        assert.deepEqual(again?.event.data, { v: 2 });
        assert.equal(await log.count("a"), 2);
        assert.deepEqual(ids(await log.read("a", 0, 10)), ["dup", "dup"]);
        const found = await log.findById("a", "dup");
        assert.equal(found?.offset, 2, "findById returns the latest");
        assert.deepEqual(found?.event.data, { v: 2 });
      }
    });

    test(title("an id repeated within one append: " + (capabilities.deduplicatesEventIds ? "stored once" : "stored twice")), async (t) => {
      const log = await harness.open(t);
      const stored = await log.append([
        makeEvent("a", "dup", { v: 1 }),
        makeEvent("b", "dup"),
        makeEvent("a", "x"),
        makeEvent("a", "dup", { v: 2 }),
      ]);
      assert.deepEqual(stored.map((e) => e.bus), ["a", "b", "a", "a"]);
      assert.equal((await log.findById("b", "dup"))?.bus, "b");
      if (capabilities.deduplicatesEventIds) {
        assert.deepEqual(offsets(stored), [1, 1, 2, 1]);
        assert.deepEqual(stored[3], stored[0], "the repeat resolves as the event first stored");
        assert.equal(await log.count("a"), 2);
        assert.deepEqual((await log.findById("a", "dup"))?.event.data, { v: 1 });
      } else {
        assert.deepEqual(offsets(stored), [1, 1, 2, 3]);
        assert.equal(await log.count("a"), 3);
        const found = await log.findById("a", "dup");
        assert.equal(found?.offset, 3, "findById returns the latest");
        assert.deepEqual(found?.event.data, { v: 2 });
      }
    });

    test(title("a large batch, then concurrent calls, store everything in order"), async (t) => {
      const log = await harness.open(t);
      const buses = ["x", "y", "z"];
      const big = Array.from({ length: 5_000 }, (_, i) => makeEvent(buses[i % 3] as string, `big-${i}`, { i }));
      const stored = await log.append(big);
      assert.equal(stored.length, 5_000);
      assert.deepEqual(ids(stored), ids(big));
      const perBus = new Map(buses.map((bus) => [bus, [] as string[]]));
      for (const e of big) perBus.get(e.bus)?.push(e.event.id);

      const calls = Array.from({ length: 20 }, (_, c) =>
        Array.from({ length: 100 }, (_, i) => makeEvent(buses[(c + i) % 3] as string, `call-${c}-${i}`, { c, i })),
      );
      const results = await Promise.all(calls.map((events) => log.append(events)));
      results.forEach((result, c) => assert.deepEqual(ids(result), ids(calls[c] ?? []), `call ${c}`));

      let total = 0;
      for (const bus of buses) {
        const all = await readAll(log, bus);
        total += all.length;
        assert.deepEqual(offsets(all), range(1, all.length), `${bus} is gap-free`);
        const expectedBig = perBus.get(bus) as string[];
        assert.deepEqual(ids(all.slice(0, expectedBig.length)), expectedBig, `${bus}: the big call first, in order`);
        const afterBig = ids(all.slice(expectedBig.length));
        for (const [c, events] of calls.entries()) {
          const mine = events.filter((e) => e.bus === bus).map((e) => e.event.id);
          assert.deepEqual(afterBig.filter((id) => id.startsWith(`call-${c}-`)), mine, `${bus}: call ${c} in order`);
        }
        assert.equal(await log.count(bus), all.length);
        assert.equal(await log.lastOffset(bus), all.length);
      }
      assert.equal(total, 7_000);
      const stats = log.stats();
      assert.equal(stats.committedEvents, 7_000);
      assert.equal(stats.failedCommits, 0);
      if (capabilities.commitPerAppend) assert.equal(stats.commits, 21);
      else assert.ok(stats.commits >= 2 && stats.commits <= 21, `${stats.commits} commits`);
    });
  });
}
