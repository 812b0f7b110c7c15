/**
 * The conformance test every sink passes: a batch written is confirmed only when the
 * destination holds all of it, in order; a failing destination rejects with a SinkError that
 * says whether a retry may help; the config schema rejects a bad config.
 * Each sink contributes a harness that sets up a real destination and reads it back.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Ajv } from "ajv";
import { CONNECTORS, SinkError, type SinkDefinition } from "../../connectors/index.js";
import { webhookSink } from "../../connectors/webhook/index.js";
import { silentLogger, systemClock, type CloudEvent } from "../../src/types.js";
import { createReceiver } from "../helpers/receiver.js";

interface Destination {
  config: unknown;
  /** A config the schema must refuse. */
  invalidConfig: unknown;
  /** The events the destination holds, in arrival order. */
  readBack(): Promise<CloudEvent[]>;
  /** Makes the next write fail; `retryable` says how the destination fails. */
  failNext(retryable: boolean): void;
  close(): Promise<void>;
}

interface SinkHarness {
  definition: SinkDefinition<never>;
  setUp(): Promise<Destination>;
}

const harnesses: SinkHarness[] = [
  {
    definition: webhookSink as SinkDefinition<never>,
    async setUp() {
      const receiver = await createReceiver();
      return {
        config: { url: `${receiver.url}/sink`, timeoutMs: 2_000 },
        invalidConfig: { url: "ftp://nowhere", extra: true },
        readBack: async () => receiver.requestsTo("/sink").map((r) => JSON.parse(r.body) as CloudEvent),
        failNext: (retryable) => receiver.script("/sink", [{ status: retryable ? 503 : 400 }]),
        close: () => receiver.close(),
      };
    },
  },
];

function events(count: number, tag: string): CloudEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    specversion: "1.0",
    id: `${tag}-${i}`,
    source: "conformance",
    type: "sink.test",
    data: { i },
  }));
}

test("sink conformance - every sink in the registry has a harness", () => {
  const sinks = CONNECTORS.filter((c) => c.kind === "sink").map((c) => c.name);
  assert.deepEqual(sinks.sort(), harnesses.map((h) => h.definition.name).sort());
});

for (const harness of harnesses) {
  describe(`sink conformance - ${harness.definition.name}`, () => {
    const context = () => ({ logger: silentLogger, clock: systemClock, signal: new AbortController().signal });

    test(`sink conformance - ${harness.definition.name} writes a batch in order`, async () => {
      const destination = await harness.setUp();
      const sink = harness.definition.create(destination.config as never, context());
      try {
        const batch = events(5, "ordered");
        await sink.write(batch);
        assert.deepEqual((await destination.readBack()).map((e) => e.id), batch.map((e) => e.id));
      } finally {
        await sink.close();
        await destination.close();
      }
    });

    test(`sink conformance - ${harness.definition.name} classifies failures`, async () => {
      const destination = await harness.setUp();
      const sink = harness.definition.create(destination.config as never, context());
      try {
        for (const retryable of [true, false]) {
          destination.failNext(retryable);
          await assert.rejects(sink.write(events(1, `fail-${retryable}`)), (error: unknown) => {
            assert.ok(error instanceof SinkError, "a SinkError");
            assert.equal(error.retryable, retryable);
            return true;
          });
        }
      } finally {
        await sink.close();
        await destination.close();
      }
    });

    test(`sink conformance - ${harness.definition.name} config schema refuses a bad config`, async () => {
      const destination = await harness.setUp();
      try {
        const validate = new Ajv({ allErrors: true }).compile(harness.definition.configSchema);
        assert.equal(validate(destination.config), true, JSON.stringify(validate.errors));
        assert.equal(validate(destination.invalidConfig), false);
      } finally {
        await destination.close();
      }
    });
  });
}
