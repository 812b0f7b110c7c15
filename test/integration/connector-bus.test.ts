/**
 * The bus source and sink on a real Relaybus: read-ahead and the order of positions, where a
 * stream without a position starts, backlog, and the sink's refusals.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { SinkError, type SourceBatch } from "../../connectors/index.js";
import { busSink, busSource, type BusSourceConfig } from "../../connectors/bus/index.js";
import { createRelaybusPort } from "../../src/streams/relaybus-port.js";
import type { CloudEvent } from "../../src/types.js";
import { startBusPlace } from "../conformance/harnesses/bus.js";
import { runSource, sinkContext, testEvents } from "../helpers/connector-runs.js";

type Place = Awaited<ReturnType<typeof startBusPlace>>;

async function place(t: TestContext): Promise<Place> {
  const started = await startBusPlace();
  t.after(() => started.service.close());
  return started;
}

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, { source: "bus-test", type: "bus.test" });
}

/** Runs the bus source until the test ends; `handle` decides each batch's fate. */
function runBusSource(
  t: TestContext,
  where: Place,
  config: Partial<BusSourceConfig>,
  handle: (batch: SourceBatch) => Promise<void>,
  options: { position?: string; maxBatchEvents?: number } = {},
) {
  const run = runSource(
    busSource,
    { bus: where.bus, ...config },
    {
      ...options,
      streamName: "bus-test",
      relaybus: where.port,
      maxBatchWaitMs: 20,
      handle,
      // A test that expects run() to reject checks that itself.
      runMayFail: true,
    },
  );
  t.after(run.stop);
  return run;
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test("bus source - reads ahead up to readAhead unconfirmed batches, positions in offset order", async (t) => {
  const where = await place(t);
  await where.port.publish(where.bus, events(10, "a"));
  const batches: SourceBatch[] = [];
  const confirmations: (() => void)[] = [];
  runBusSource(
    t,
    where,
    { startAt: "oldest", readAhead: 3 },
    (batch) => {
      batches.push(batch);
      return new Promise<void>((resolve) => confirmations.push(resolve));
    },
    { maxBatchEvents: 2 },
  );
  await until(() => batches.length === 3, "three batches");
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(batches.length, 3, "no fourth batch while three wait for confirmation");
  confirmations[0]?.();
  await until(() => batches.length === 4, "a fourth batch once the first is confirmed");
  for (const confirm of confirmations.slice(1)) confirm();
  await until(() => batches.length === 5, "all five batches");
  assert.deepEqual(
    batches.map((b) => b.position),
    ["2", "4", "6", "8", "10"],
  );
  assert.deepEqual(
    batches.flatMap((b) => b.events.map((e) => e.id)),
    events(10, "a").map((e) => e.id),
  );
  assert.deepEqual(batches[0]?.events[0], events(1, "a")[0], "events pass through unchanged");
});

test("bus source - startAt newest skips what the bus held, oldest reads it, a saved position wins over both", async (t) => {
  const where = await place(t);
  await where.port.publish(where.bus, events(3, "before"));
  const received = { newest: [] as string[], oldest: [] as string[], saved: [] as string[] };
  for (const [name, config, position] of [
    ["newest", {}, undefined],
    ["oldest", { startAt: "oldest" }, undefined],
    ["saved", { startAt: "oldest" }, "2"],
  ] as const) {
    runBusSource(
      t,
      where,
      config,
      async (batch) => void received[name].push(...batch.events.map((e) => e.id)),
      { position },
    );
  }
  await until(() => received.oldest.length === 3 && received.saved.length === 1, "the old events");
  await where.port.publish(where.bus, events(1, "after"));
  await until(() => received.newest.length === 1 && received.oldest.length === 4, "the new event");
  assert.deepEqual(received.newest, ["after-0"], "newest is the default");
  assert.deepEqual(received.oldest, ["before-0", "before-1", "before-2", "after-0"]);
  assert.deepEqual(received.saved, ["before-2", "after-0"]);
});

test("bus source - backlog counts the events not handed over yet", async (t) => {
  const where = await place(t);
  await where.port.publish(where.bus, events(5, "b"));
  const batches: SourceBatch[] = [];
  const { source } = runBusSource(
    t,
    where,
    { startAt: "oldest", readAhead: 1 },
    (batch) => {
      batches.push(batch);
      return new Promise<void>(() => {});
    },
    { maxBatchEvents: 2 },
  );
  await until(() => batches.length === 1, "the first batch");
  assert.equal(await source.backlog?.(), 3);
  await where.port.publish(where.bus, events(4, "more"));
  assert.equal(await source.backlog?.(), 7);
});

test("bus source - a refused batch ends the run with its error, and a run from the saved position hands the events over again", async (t) => {
  const where = await place(t);
  await where.port.publish(where.bus, events(4, "r"));
  const refused = new Error("the sink failed");
  const first = runBusSource(t, where, { startAt: "oldest" }, () => Promise.reject(refused), {
    maxBatchEvents: 2,
  });
  const started = Date.now();
  await assert.rejects(first.running, (error) => error === refused);
  assert.ok(Date.now() - started < 1_000, "the run ends at once, not after an idle wait");
  const again: string[] = [];
  runBusSource(
    t,
    where,
    { startAt: "newest" },
    async (batch) => void again.push(...batch.events.map((e) => e.id)),
    { position: "0" },
  );
  await until(() => again.length === 4, "the events again");
  assert.deepEqual(
    again,
    events(4, "r").map((e) => e.id),
  );
});

test("bus source - run rejects when the bus does not exist", async (t) => {
  const where = await place(t);
  const { running } = runBusSource(t, { ...where, bus: "no-such-bus" }, {}, async () => {});
  await assert.rejects(running, /bus "no-such-bus" does not exist/);
});

test("bus sink - publishes a batch in order, and an event over the size limit fails for good", async (t) => {
  const where = await place(t);
  const context = sinkContext({ streamName: "bus-test", relaybus: where.port });
  const sink = busSink.create({ bus: where.bus }, context);
  await sink.write(events(3, "s"));
  assert.deepEqual(
    (await where.readBack()).map((e) => e.id),
    ["s-0", "s-1", "s-2"],
  );

  const smallPort = createRelaybusPort({
    log: where.service.storage.log,
    busExists: (name) => where.service.registry.busExists(name),
    limits: { maxEventBytes: 200 },
  });
  const small = busSink.create({ bus: where.bus }, { ...context, relaybus: smallPort });
  const large = { ...events(1, "large")[0], data: "x".repeat(300) } as CloudEvent;
  await assert.rejects(small.write([...events(1, "fits"), large]), (error: unknown) => {
    assert.ok(error instanceof SinkError);
    assert.equal(error.retryable, false);
    assert.match(error.message, /over the limit of 200/);
    return true;
  });
  assert.equal((await where.readBack()).length, 3, "nothing of a refused batch is published");
  const elsewhere = busSink.create({ bus: "no-such-bus" }, context);
  await assert.rejects(
    elsewhere.write(events(1, "x")),
    (error: unknown) => error instanceof SinkError && !error.retryable,
  );
});
