/**
 * ACCEPTANCE (issue 6): random mixes of event sizes, through every ingest path, metered to
 * the unit. Sizes include an event with 0 bytes of padding, events whose stored JSON is
 * exactly 65,535, 65,536 and 65,537 bytes, and the largest accepted (limits.maxEventBytes).
 * After the meters and the rollup run, usage per hour and per day equals the sum of
 * ceil(size / 65536) over the events (computed here from the sizes the log stored, with
 * this file's own formula), and push usage equals the sum over the attempts the receiver
 * saw (a first attempt fails, so retries are in it).
 *
 * An event's size is the UTF-8 byte length of its JSON as stored. Each path's events carry
 * `data: {"p": "<padding>"}`; a calibration event with empty padding gives the path's base
 * size (ids and times have fixed lengths), so padding of `size - base` ASCII bytes makes
 * the stored event exactly `size` bytes, which the test checks against the log.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

const MAX_EVENT_BYTES = DEFAULT_CONFIG.limits.maxEventBytes;
const PATHS = ["put-events", "aws-put-events", "cloudevents-binary", "cloudevents-structured", "cloudevents-batch"] as const;
type IngestPath = (typeof PATHS)[number];
/** `base`: padding of 0 bytes; `max`: maxEventBytes; numbers: the stored size itself. */
type SizeChoice = "base" | "max" | number;

interface Item {
  path: IngestPath;
  size: SizeChoice;
}

type Obj = Record<string, unknown>;

/** The test's own unit formula, independent of src/. */
const unitsOf = (bytes: number) => Math.max(1, Math.ceil(bytes / 65_536));
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

describe("metering acceptance", () => {
  let service: TestService;
  let receiver: Receiver;
  /** Stored size of each path's event with empty padding. */
  const baseSize = new Map<IngestPath, number>();
  let run = 0;
  let ceCounter = 0;

  before(async () => {
    receiver = await createReceiver();
    // Sent from the main thread: with the sender threads (delivery.senderThreads, in
    // progress) bodies over 64 KB were not delivered when this test was written.
    service = await startTestService({ config: { delivery: { senderThreads: 0 } } });
    await createBus("calibration");
    for (const path of PATHS) {
      const [sent] = await publish("calibration", path, [0]);
      baseSize.set(path, (await storedEvent("calibration", sent!.id)).sizeBytes);
    }
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  async function createBus(bus: string): Promise<void> {
    const created = await service.post("/v1/buses", { name: bus });
    assert.equal(created.status, 201);
    const rule = await service.post(`/v1/buses/${bus}/rules`, {
      name: "all",
      pattern: { source: [{ prefix: "" }] },
      targets: [
        {
          id: "sink",
          webhook: { url: `${receiver.url}/${bus}` },
          format: "cloudevents-structured",
          retry: { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 10 },
        },
      ],
    });
    assert.equal(rule.status, 201, await rule.text());
  }

  async function storedEvent(bus: string, id: string): Promise<{ sizeBytes: number; units: number; receivedAt: string }> {
    const response = await service.get(`/v1/buses/${bus}/events/${encodeURIComponent(id)}`);
    assert.equal(response.status, 200);
    return (await response.json()) as { sizeBytes: number; units: number; receivedAt: string };
  }

  /**
   * Publishes one event per padding length through `path`, asking for units; returns each
   * event's id and the units the answer gave.
   */
  async function publish(bus: string, path: IngestPath, paddings: number[]): Promise<{ id: string; units: number }[]> {
    const data = (padding: number) => ({ p: "x".repeat(padding) });
    const ceEvent = (padding: number) => ({
      specversion: "1.0",
      id: `ce-${String(++ceCounter).padStart(8, "0")}`,
      source: "prop",
      type: "sized",
      time: "2026-01-02T03:04:05.000Z",
      datacontenttype: "application/json",
      data: data(padding),
    });
    const unitsHeader = { "relaybus-include-units": "true" };
    const json = async (response: Response) => {
      assert.equal(response.status, 200, `${path}: ${response.status}`);
      return (await response.json()) as Obj;
    };
    switch (path) {
      case "put-events":
      case "aws-put-events": {
        const Entries = paddings.map((padding) => ({
          EventBusName: bus,
          Source: "prop",
          DetailType: "sized",
          Detail: JSON.stringify(data(padding)),
        }));
        const answer =
          path === "put-events"
            ? await json(await service.post("/v1/events", { Entries }, unitsHeader))
            : await json(
                await service.post("/", { Entries }, {
                  ...unitsHeader,
                  "content-type": "application/x-amz-json-1.1",
                  "x-amz-target": "AWSEvents.PutEvents",
                }),
              );
        assert.equal(answer.FailedEntryCount, 0, JSON.stringify(answer).slice(0, 500));
        return (answer.Entries as { EventId: string; Units: number }[]).map((e) => ({ id: e.EventId, units: e.Units }));
      }
      case "cloudevents-batch": {
        const events = paddings.map(ceEvent);
        const answer = await json(
          await service.post(`/v1/buses/${bus}/cloudevents`, JSON.stringify(events), {
            ...unitsHeader,
            "content-type": "application/cloudevents-batch+json",
          }),
        );
        assert.equal(answer.failedCount, 0, JSON.stringify(answer).slice(0, 500));
        return (answer.results as { id: string; units: number }[]).map((r) => ({ id: r.id, units: r.units }));
      }
      case "cloudevents-structured":
      case "cloudevents-binary": {
        const sent: { id: string; units: number }[] = [];
        for (const padding of paddings) {
          const event = ceEvent(padding);
          const response =
            path === "cloudevents-structured"
              ? await service.post(`/v1/buses/${bus}/cloudevents`, JSON.stringify(event), {
                  ...unitsHeader,
                  "content-type": "application/cloudevents+json",
                })
              : await service.post(`/v1/buses/${bus}/cloudevents`, JSON.stringify(event.data), {
                  ...unitsHeader,
                  "content-type": "application/json",
                  "ce-specversion": "1.0",
                  "ce-id": event.id,
                  "ce-source": event.source,
                  "ce-type": event.type,
                  "ce-time": event.time,
                });
          const answer = await json(response);
          assert.equal(answer.id, event.id);
          sent.push({ id: event.id, units: Number(response.headers.get("relaybus-units")) });
        }
        return sent;
      }
    }
  }

  /** Usage of `bus` per bucket start, for one meter, through `GET /v1/usage`. */
  async function usageOf(bus: string, meter: string, granularity: "hour" | "day"): Promise<Map<number, { quantity: number; units: number }>> {
    const from = new Date(Date.now() - 2 * DAY_MS).toISOString();
    const response = await service.get(`/v1/usage?groupBy=bus,meter&granularity=${granularity}&from=${from}`);
    assert.equal(response.status, 200);
    const { rows } = (await response.json()) as { rows: { start: string; bus: string; meter: string; quantity: number; units: number }[] };
    const out = new Map<number, { quantity: number; units: number }>();
    for (const row of rows) {
      if (row.bus === bus && row.meter === meter) out.set(Date.parse(row.start), { quantity: row.quantity, units: row.units });
    }
    return out;
  }

  function add(map: Map<number, { quantity: number; units: number }>, key: number, units: number): void {
    const entry = map.get(key) ?? { quantity: 0, units: 0 };
    entry.quantity += 1;
    entry.units += units;
    map.set(key, entry);
  }

  const sizeChoice: fc.Arbitrary<SizeChoice> = fc.oneof(
    fc.constantFrom<SizeChoice>("base", 65_535, 65_536, 65_537, "max"),
    fc.integer({ min: 2_000, max: MAX_EVENT_BYTES }),
  );
  const item: fc.Arbitrary<Item> = fc.record({ path: fc.constantFrom(...PATHS), size: sizeChoice });
  /** Every boundary through every path once, then random mixes. */
  const boundaries: Item[] = PATHS.flatMap((path) =>
    (["base", 65_535, 65_536, 65_537, "max"] as const).map((size) => ({ path, size })),
  );

  test("metering acceptance - usage per hour and day equals the sum of ceil(size/65536) per meter, through every ingest path", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 6 }), async (items) => {
        const bus = `prop-${++run}`;
        await createBus(bus);
        receiver.script(`/${bus}`, [{ status: 500 }]); // the first attempt fails: retries count
        const published: { id: string; units: number; size: number }[] = [];
        for (const path of PATHS) {
          const mine = items.filter((i) => i.path === path);
          if (mine.length === 0) continue;
          const base = baseSize.get(path)!;
          const sizes = mine.map((i) => (i.size === "base" ? base : i.size === "max" ? MAX_EVENT_BYTES : Math.max(base, i.size)));
          const sent = await publish(bus, path, sizes.map((s) => s - base));
          sent.forEach((s, k) => published.push({ ...s, size: sizes[k]! }));
        }

        const expectedHourly = new Map<number, { quantity: number; units: number }>();
        const expectedDaily = new Map<number, { quantity: number; units: number }>();
        for (const event of published) {
          const stored = await storedEvent(bus, event.id);
          assert.equal(stored.sizeBytes, event.size, "the stored size is the one built");
          assert.equal(event.units, unitsOf(event.size), "the answer's units");
          const receivedAtMs = Date.parse(stored.receivedAt);
          add(expectedHourly, Math.floor(receivedAtMs / HOUR_MS) * HOUR_MS, unitsOf(stored.sizeBytes));
          add(expectedDaily, Math.floor(receivedAtMs / DAY_MS) * DAY_MS, unitsOf(stored.sizeBytes));
        }

        // Every delivery ends (one retry after the scripted failure), and every attempt is recorded.
        const attempts = await receiver.waitFor(published.length + 1, 20_000, `/${bus}`);
        const expectedPush = { quantity: attempts.length, units: attempts.reduce((sum, a) => sum + unitsOf(a.rawBody.length), 0) };
        const sum = (m: Map<number, { quantity: number; units: number }>) =>
          [...m.values()].reduce((t, v) => ({ quantity: t.quantity + v.quantity, units: t.units + v.units }), { quantity: 0, units: 0 });
        for (const deadline = Date.now() + 20_000; ; ) {
          await service.metering!.catchUp();
          const push = sum(await usageOf(bus, "push", "hour"));
          if (push.quantity >= expectedPush.quantity || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 20));
        }

        assert.deepEqual(await usageOf(bus, "publish", "hour"), expectedHourly, "publish, hourly");
        assert.deepEqual(await usageOf(bus, "publish", "day"), expectedDaily, "publish, daily");
        assert.deepEqual(sum(await usageOf(bus, "push", "hour")), expectedPush, "push, hourly");
        assert.deepEqual(sum(await usageOf(bus, "push", "day")), expectedPush, "push, daily");
        // Running the meters and the rollup again changes nothing.
        await service.metering!.catchUp();
        await service.metering!.rollup.run();
        assert.deepEqual(await usageOf(bus, "publish", "day"), expectedDaily, "publish, daily, after a rerun");
        assert.deepEqual(sum(await usageOf(bus, "push", "day")), expectedPush, "push, daily, after a rerun");
      }),
      { numRuns: 12, examples: [[boundaries.slice(0, 13)], [boundaries.slice(13)]], endOnFailure: true, includeErrorInReport: true },
    );
  });

  /** Usage of `stream` for one meter, summed over the range, through `GET /v1/usage`. */
  async function streamUsage(stream: string, meter: string, granularity: "hour" | "day"): Promise<{ quantity: number; units: number }> {
    const from = new Date(Date.now() - 2 * DAY_MS).toISOString();
    const response = await service.get(`/v1/usage?groupBy=stream,meter&granularity=${granularity}&from=${from}`);
    assert.equal(response.status, 200);
    const { rows } = (await response.json()) as { rows: { stream: string; meter: string; quantity: number; units: number }[] };
    return rows
      .filter((r) => r.stream === stream && r.meter === meter)
      .reduce((t, r) => ({ quantity: t.quantity + r.quantity, units: t.units + r.units }), { quantity: 0, units: 0 });
  }

  test("metering acceptance - a stream billed per event meters the events it reads, retries included, to the unit", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sizeChoice, { minLength: 1, maxLength: 5 }), async (choices) => {
        const n = ++run;
        const bus = `prop-s-${n}`;
        const stream = `meter-${n}`;
        assert.equal((await service.post("/v1/buses", { name: bus })).status, 201);
        const base = baseSize.get("put-events")!;
        const sizes = choices.map((c) => (c === "base" ? base : c === "max" ? MAX_EVENT_BYTES : Math.max(base, c)));
        const sent = await publish(bus, "put-events", sizes.map((size) => size - base));
        // The first write fails once: the first event is read (and metered) twice.
        receiver.script(`/${stream}`, [{ status: 503 }]);
        const created = await service.post("/v1/streams", {
          name: stream,
          source: { bus: { bus, startAt: "oldest" } },
          sink: { webhook: { url: `${receiver.url}/${stream}` } },
          batch: { maxEvents: 1 },
          capacity: { billing: "events" },
          retry: { delaysMs: [5] },
        });
        assert.equal(created.status, 201, await created.text());
        await receiver.waitFor(sent.length + 1, 20_000, `/${stream}`);
        const expected = {
          quantity: sizes.length + 1,
          units: sizes.reduce((sum, size) => sum + unitsOf(size), 0) + unitsOf(sizes[0]!),
        };
        for (const deadline = Date.now() + 10_000; ; ) {
          const counted = await streamUsage(stream, "stream-events", "hour");
          if (counted.quantity >= expected.quantity || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await service.metering!.catchUp();
        assert.deepEqual(await streamUsage(stream, "stream-events", "hour"), expected, "stream-events, hourly");
        assert.deepEqual(await streamUsage(stream, "stream-events", "day"), expected, "stream-events, daily");
        assert.deepEqual(await streamUsage(stream, "stream-cu-hours", "hour"), { quantity: 0, units: 0 }, "billed per event, not per CU");
        assert.equal((await fetch(`${service.url}/v1/streams/${stream}`, { method: "DELETE" })).status, 204);
      }),
      { numRuns: 4, examples: [[["base", 65_535, 65_536, 65_537, "max"]]], endOnFailure: true, includeErrorInReport: true },
    );
  });
});
