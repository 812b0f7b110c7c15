/**
 * The webhook sink's batch mode against a real receiver (single mode runs in the shared sink
 * conformance test): one application/cloudevents-batch+json request per batch.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { SinkError } from "../../connectors/index.js";
import { webhookSink } from "../../connectors/webhook/index.js";
import type { CloudEvent } from "../../src/types.js";
import { sinkContext, testEvents } from "../helpers/connector-runs.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";

const context = sinkContext({ streamName: "webhook-test" });

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, { source: "webhook-test", type: "t" });
}

async function receiver(t: TestContext): Promise<Receiver> {
  const started = await createReceiver();
  t.after(async () => {
    await started.close();
    await assertNothingOpen();
  });
  return started;
}

test("webhook sink - batch mode POSTs each batch as one CloudEvents batch request, in order", async (t) => {
  const hook = await receiver(t);
  const sink = webhookSink.create(
    { url: `${hook.url}/batch`, mode: "batch", headers: { "x-stream": "s1" } },
    context,
  );
  await sink.write(events(3, "a"));
  await sink.write(events(2, "b"));
  await sink.write([]);
  await sink.close();
  const requests = hook.requestsTo("/batch");
  assert.equal(requests.length, 2, "one request per batch, none for an empty batch");
  assert.equal(requests[0]?.headers["content-type"], "application/cloudevents-batch+json");
  assert.equal(requests[0]?.headers["x-stream"], "s1");
  assert.deepEqual(JSON.parse(requests[0]?.body ?? ""), events(3, "a"));
  assert.deepEqual(JSON.parse(requests[1]?.body ?? ""), events(2, "b"));
});

test("webhook sink - batch mode fails the whole batch as the answer says: 503 retryable, 413 not", async (t) => {
  const hook = await receiver(t);
  const sink = webhookSink.create({ url: `${hook.url}/batch`, mode: "batch" }, context);
  hook.script("/batch", [{ status: 503 }, { status: 413 }]);
  for (const retryable of [true, false]) {
    await assert.rejects(sink.write(events(2, `fail-${retryable}`)), (error: unknown) => {
      assert.ok(error instanceof SinkError);
      assert.equal(error.retryable, retryable);
      return true;
    });
  }
  await sink.write(events(1, "ok"));
  assert.equal(hook.requestsTo("/batch").length, 3);
  await sink.close();
});

test("webhook sink - single mode (the default) sends one structured-mode request per event", async (t) => {
  const hook = await receiver(t);
  const sink = webhookSink.create({ url: `${hook.url}/one` }, context);
  await sink.write(events(2, "s"));
  await sink.close();
  const requests = hook.requestsTo("/one");
  assert.deepEqual(
    requests.map((r) => r.headers["content-type"]),
    ["application/cloudevents+json", "application/cloudevents+json"],
  );
  assert.deepEqual(
    requests.map((r) => (JSON.parse(r.body) as CloudEvent).id),
    ["s-0", "s-1"],
  );
});
