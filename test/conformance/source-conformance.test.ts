/**
 * The conformance test every source passes, against its real origin:
 * - what is produced arrives, in order, in batches no larger than asked;
 * - a batch the stream did not confirm comes again on the next run (at least once);
 * - a confirmed batch does not come again, with the position the stream saved;
 * - raw payloads are wrapped in CloudEvents whose ids are the same on every read;
 * - `run` ends soon after the stream aborts; the config schema refuses a bad config.
 * Each source contributes a harness (`harnesses/<connector>.ts`) with a real origin.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Ajv } from "ajv";
import { CONNECTORS, type SourceBatch } from "../../connectors/index.js";
import type { CloudEvent } from "../../src/types.js";
import { runSource, testEvents, type SourceRun } from "../helpers/connector-runs.js";
import type { Origin, SourceHarness } from "./connector-harness.js";
import { loadHarnesses } from "./load-harnesses.js";

const { sources } = await loadHarnesses();
const WAIT_MS = 15_000;

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, {
    source: "conformance",
    type: "source.test",
    data: (i) => ({ i, text: "é ✓" }),
  });
}

/**
 * Starts the source, given what the origin says (its clock, its port). `stop` also checks
 * that `run` ends within 5 s of the abort and that `close` may be called again.
 */
function startSource(
  harness: SourceHarness,
  origin: Origin,
  options: { position?: string; maxBatchEvents?: number; confirm?: (batch: SourceBatch) => boolean } = {},
): SourceRun {
  const run = runSource(harness.definition, origin.config as never, {
    ...options,
    streamName: "conformance",
    clock: origin.clock,
    relaybus: origin.relaybus,
    waitMs: WAIT_MS,
  });
  return {
    ...run,
    async stop() {
      const started = Date.now();
      await run.stop();
      await run.source.close();
      assert.ok(Date.now() - started < 5_000, "run ends within 5 s of the abort");
    },
  };
}

test("source conformance - every source in the registry has a harness", () => {
  const registered = CONNECTORS.filter((c) => c.kind === "source").map((c) => c.name);
  assert.deepEqual(registered.sort(), sources.map((h) => h.definition.name).sort());
});

async function withOrigin(harness: SourceHarness, body: (origin: Origin) => Promise<void>): Promise<void> {
  const origin = await harness.setUp();
  try {
    await body(origin);
  } finally {
    await origin.close();
  }
}

/** The ids the source will give `produced`: theirs, or those the origin says it made. */
async function produce(origin: Origin, produced: CloudEvent[]): Promise<string[]> {
  const made = await origin.produce(produced);
  return made ? made.ids : produced.map((e) => e.id);
}

for (const harness of sources) {
  const name = harness.definition.name;
  const skip = (await harness.skipReason?.()) ?? false;
  describe(`source conformance - ${name}`, { skip }, () => {
    test(`source conformance - ${name} hands over what was produced, in order, in bounded batches`, () =>
      withOrigin(harness, async (origin) => {
        const run = startSource(harness, origin, { maxBatchEvents: 7 });
        try {
          const before = await produce(origin, events(12, "early"));
          await run.waitFor(before.length);
          const after = await produce(origin, events(13, "late"));
          await run.waitFor(before.length + after.length);
          assert.deepEqual(run.received.map((e) => e.id), [...before, ...after]);
          assert.ok(run.batches.every((b) => b.events.length > 0 && b.events.length <= 7), "batches hold 1 to maxBatchEvents events");
          const first = run.received[0];
          if (origin.clock === undefined) {
            assert.equal(first?.type, "source.test");
            assert.deepEqual(first?.data, { i: 0, text: "é ✓" });
          }
          assert.equal(first?.specversion, "1.0");
        } finally {
          await run.stop();
        }
      }));

    test(`source conformance - ${name} hands over again what was not confirmed`, () =>
      withOrigin(harness, async (origin) => {
        const first = startSource(harness, origin, { confirm: () => false });
        let ids: string[];
        try {
          ids = await produce(origin, events(5, "unconfirmed"));
          await first.waitFor(ids.length);
        } finally {
          await first.stop();
        }
        const second = startSource(harness, origin, { position: first.position() });
        try {
          await second.waitFor(ids.length);
          assert.deepEqual(second.received.slice(0, ids.length).map((e) => e.id), ids);
        } finally {
          await second.stop();
        }
      }));

    test(`source conformance - ${name} does not hand over again what was confirmed`, () =>
      withOrigin(harness, async (origin) => {
        const first = startSource(harness, origin);
        let confirmed: string[];
        try {
          confirmed = await produce(origin, events(5, "confirmed"));
          await first.waitFor(confirmed.length);
          // Let the last confirmation reach the broker before stopping.
          await new Promise((resolve) => setTimeout(resolve, 200));
        } finally {
          await first.stop();
        }
        const second = startSource(harness, origin, { position: first.position() });
        try {
          const fresh = await produce(origin, events(3, "fresh"));
          await second.waitFor(fresh.length);
          await new Promise((resolve) => setTimeout(resolve, 300));
          assert.deepEqual(second.received.map((e) => e.id), fresh);
        } finally {
          await second.stop();
        }
      }));

    if (harness.definition.name !== "schedule") {
      test(`source conformance - ${name} wraps raw payloads in CloudEvents with stable ids`, async (t) => {
        await withOrigin(harness, async (origin) => {
          if (origin.produceRaw === undefined) {
            t.skip(`${name} carries only CloudEvents`);
            return;
          }
          const first = startSource(harness, origin, { confirm: () => false });
          try {
            await origin.produceRaw([{ order: 1 }, "plain text", 42]);
            await first.waitFor(3);
          } finally {
            await first.stop();
          }
          const wrapped = first.received.slice(0, 3);
          for (const event of wrapped) {
            assert.equal(event.specversion, "1.0");
            assert.ok(event.id.length > 0 && event.source.length > 0 && event.type.length > 0, JSON.stringify(event));
          }
          assert.deepEqual(wrapped.map((e) => e.data), [{ order: 1 }, "plain text", 42]);
          const second = startSource(harness, origin, { position: first.position() });
          try {
            await second.waitFor(3);
            assert.deepEqual(second.received.slice(0, 3).map((e) => e.id), wrapped.map((e) => e.id), "the same ids on a second read");
          } finally {
            await second.stop();
          }
        });
      });
    }

    test(`source conformance - ${name} config schema refuses a bad config`, () =>
      withOrigin(harness, async (origin) => {
        const validate = new Ajv({ allErrors: true }).compile(harness.definition.configSchema);
        assert.equal(validate(origin.config), true, JSON.stringify(validate.errors));
        assert.equal(validate(origin.invalidConfig), false);
      }));
  });
}
