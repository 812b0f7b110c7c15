/**
 * The conformance test every sink passes: a batch written is confirmed only when the
 * destination holds all of it, in order; a failing destination rejects with a SinkError that
 * says whether a retry may help; the config schema rejects a bad config; close is idempotent.
 * Each sink contributes a harness (`harnesses/<connector>.ts`) with a real destination.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Ajv } from "ajv";
import { CONNECTORS, SinkError, type ConnectorContext } from "../../connectors/index.js";
import type { CloudEvent } from "../../src/types.js";
import { sinkContext, testEvents } from "../helpers/connector-runs.js";
import type { Destination, SinkHarness } from "./connector-harness.js";
import { loadHarnesses } from "./load-harnesses.js";

const { sinks } = await loadHarnesses();

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, {
    source: "conformance",
    type: "sink.test",
    data: (i) => ({ i, text: "é ✓" }),
  });
}

function contextFor(destination: Destination): ConnectorContext {
  return sinkContext({ streamName: "conformance", relaybus: destination.relaybus });
}

test("sink conformance - every sink in the registry has a harness", () => {
  const registered = CONNECTORS.filter((c) => c.kind === "sink").map((c) => c.name);
  assert.deepEqual(registered.sort(), sinks.map((h) => h.definition.name).sort());
});

async function withSink(harness: SinkHarness, body: (destination: Destination) => Promise<void>): Promise<void> {
  const destination = await harness.setUp();
  try {
    await body(destination);
  } finally {
    await destination.close();
  }
}

for (const harness of sinks) {
  const name = harness.definition.name;
  const skip = (await harness.skipReason?.()) ?? false;
  describe(`sink conformance - ${name}`, { skip }, () => {
    test(`sink conformance - ${name} writes batches in order, the whole of each`, () =>
      withSink(harness, async (destination) => {
        const sink = harness.definition.create(destination.config as never, contextFor(destination));
        try {
          const first = events(5, "ordered-a");
          const second = events(3, "ordered-b");
          await sink.write(first);
          await sink.write(second);
          await sink.write([]);
          const held = await destination.readBack();
          assert.deepEqual(held.map((e) => e.id), [...first, ...second].map((e) => e.id));
          assert.deepEqual(held[0]?.data, first[0]?.data, "the data arrives unchanged");
          assert.equal(held[0]?.type, "sink.test");
          assert.equal(held[0]?.source, "conformance");
        } finally {
          await sink.close();
          await sink.close();
        }
      }));

    test(`sink conformance - ${name} classifies failures`, () =>
      withSink(harness, async (destination) => {
        const sink = harness.definition.create(destination.config as never, contextFor(destination));
        try {
          for (const retryable of [true, false]) {
            await destination.failNext(retryable);
            await assert.rejects(sink.write(events(1, `fail-${retryable}`)), (error: unknown) => {
              assert.ok(error instanceof SinkError, `a SinkError, got ${String(error)}`);
              assert.equal(error.retryable, retryable);
              return true;
            });
          }
          const after = events(2, "after-failures");
          await sink.write(after);
          const held = (await destination.readBack()).map((e) => e.id);
          assert.deepEqual(held.slice(-2), after.map((e) => e.id), "the sink writes again once the destination recovers");
        } finally {
          await sink.close();
        }
      }));

    test(`sink conformance - ${name} config schema refuses a bad config`, () =>
      withSink(harness, async (destination) => {
        const validate = new Ajv({ allErrors: true }).compile(harness.definition.configSchema);
        assert.equal(validate(destination.config), true, JSON.stringify(validate.errors));
        assert.equal(validate(destination.invalidConfig), false);
      }));
  });
}
