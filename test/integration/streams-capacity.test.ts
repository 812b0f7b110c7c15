/**
 * The CU quota and the scaler on a real stream, on a scaled-down CU (the maths must not
 * depend on its absolute size): with minCU = maxCU = 1 a source with far more waiting than
 * the quota allows is carried at 1 CU ± 5%; with events twenty times larger the bytes bound
 * binds instead; with maxCU = 4 a backlog takes the stream to 4 CU and, once drained, back
 * to 1, every change recorded and the CU time metered.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

/** One scaled-down CU: 200 events/s or 400 KiB/s. */
const CU_EVENTS = 200;
const CU_BYTES = 409_600;

const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const thing of open.reverse()) await thing.close();
});

async function setUp(scaleIntervalMs = 10_000): Promise<{ svc: TestService; sink: Receiver }> {
  const sink = await createReceiver();
  open.push(sink);
  const svc = await startTestService({
    config: { streams: { cuEventsPerSecond: CU_EVENTS, cuBytesPerSecond: CU_BYTES, scaleIntervalMs, scaleDownAfterIntervals: 2 } },
  });
  open.push(svc);
  return { svc, sink };
}

/** Puts `count` events of about `bytes` bytes each on the default bus. */
async function fill(svc: TestService, count: number, bytes: number): Promise<void> {
  const padding = "x".repeat(Math.max(0, bytes - 200));
  for (let i = 0; i < count; i += 10) {
    const entries = Array.from({ length: Math.min(10, count - i) }, (_, j) => ({
      Source: "load",
      DetailType: "t",
      Detail: JSON.stringify({ n: i + j, padding }),
    }));
    const response = await svc.post("/v1/events", { Entries: entries });
    assert.equal(response.status, 200);
  }
}

async function counters(svc: TestService, name: string): Promise<{ eventsOut: number; bytesOut: number; throttledMs: number }> {
  const body = (await (await svc.get(`/v1/streams/${name}`)).json()) as { counters: { eventsOut: number; bytesOut: number; throttledMs: number } };
  return body.counters;
}

async function createStream(svc: TestService, sink: Receiver, name: string, capacity: Obj): Promise<void> {
  const response = await svc.post("/v1/streams", {
    name,
    source: { bus: { bus: "default", startAt: "oldest" } },
    sink: { webhook: { url: `${sink.url}/${name}`, mode: "batch" } },
    batch: { maxEvents: 20, maxWaitMs: 10 },
    capacity,
  });
  assert.equal(response.status, 201, await response.text());
}

/** Events and bytes per second the stream wrote over `ms`, after `warmUpMs`. */
async function measure(svc: TestService, name: string, warmUpMs: number, ms: number): Promise<{ events: number; bytes: number }> {
  await new Promise((resolve) => setTimeout(resolve, warmUpMs));
  const before = await counters(svc, name);
  const startedAt = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const afterCounters = await counters(svc, name);
  const seconds = (performance.now() - startedAt) / 1000;
  return { events: (afterCounters.eventsOut - before.eventsOut) / seconds, bytes: (afterCounters.bytesOut - before.bytesOut) / seconds };
}

test("streams capacity - 1 CU carries CU events per second, ± 5%, from a source far faster", async () => {
  const { svc, sink } = await setUp();
  await fill(svc, 2_500, 1_024);
  await createStream(svc, sink, "one-cu", { minCU: 1, maxCU: 1 });
  const rate = await measure(svc, "one-cu", 1_000, 6_000);
  assert.ok(Math.abs(rate.events - CU_EVENTS) / CU_EVENTS <= 0.05, `${rate.events.toFixed(1)} events/s, expected ${CU_EVENTS} ± 5%`);
  const status = (await (await svc.get("/v1/streams/one-cu")).json()) as { counters: { throttledMs: number }; live: { currentCU: number } };
  assert.equal(status.live.currentCU, 1);
  assert.ok(status.counters.throttledMs > 2_000, `throttled time is visible: ${status.counters.throttledMs} ms`);
});

test("streams capacity - with 20x larger events the bytes bound binds instead", async () => {
  const { svc, sink } = await setUp();
  await fill(svc, 400, 20_480);
  await createStream(svc, sink, "big-events", { minCU: 1, maxCU: 1 });
  const rate = await measure(svc, "big-events", 1_000, 6_000);
  assert.ok(rate.events < CU_EVENTS / 2, `events are not what binds: ${rate.events.toFixed(1)} events/s`);
  assert.ok(Math.abs(rate.bytes - CU_BYTES) / CU_BYTES <= 0.05, `${Math.round(rate.bytes)} bytes/s, expected ${CU_BYTES} ± 5%`);
});

test("streams capacity - a backlog scales the stream up to maxCU, and it returns to minCU once drained", async () => {
  const { svc, sink } = await setUp(400);
  await fill(svc, 4_000, 512);
  await createStream(svc, sink, "scales", { minCU: 1, maxCU: 4 });
  const deadline = Date.now() + 40_000;
  let changes: { fromCU: number; toCU: number; reason: string }[] = [];
  while (Date.now() < deadline) {
    const body = (await (await svc.get("/v1/streams/scales/capacity")).json()) as { currentCU: number; changes: typeof changes };
    changes = [...body.changes].reverse();
    if (changes.some((c) => c.toCU === 4) && body.currentCU === 1 && (await counters(svc, "scales")).eventsOut === 4_000) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const path = [1, ...changes.map((c) => c.toCU)];
  assert.deepEqual(path, [1, 2, 3, 4, 3, 2, 1], `capacity went ${path.join(" → ")}`);
  assert.match(changes[0]!.reason, /throttled \d+% of the last/);
  assert.match(changes[changes.length - 1]!.reason, /fit in 1 CU/);
  for (const change of changes) assert.equal(Math.abs(change.toCU - change.fromCU), 1);
  assert.equal((await counters(svc, "scales")).eventsOut, 4_000);

  // The CU time is metered in CU-milli-hours: about the seconds it ran at each CU count.
  const usage = (await (await svc.get("/v1/usage?groupBy=stream,meter&granularity=hour")).json()) as {
    totals: { meter: string; quantity: number }[];
  };
  const cuMilliHours = usage.totals.find((t) => t.meter === "stream-cu-hours")?.quantity ?? 0;
  assert.ok(cuMilliHours > 0, "stream-cu-hours counted");
});
