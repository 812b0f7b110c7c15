/**
 * A delivery in structured mode sends the log's own JSON of the event: the succeeded
 * delivery keeps a reference to the event instead of a copy of it, and the trace still shows
 * the payload as sent.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { SqliteStorage } from "../../src/log/sqlite/index.js";
import { createReceiver } from "../helpers/receiver.js";
import { startTestService } from "../helpers/service.js";

test("trace - a structured-mode payload is stored by reference and shown as sent", async (t) => {
  const receiver = await createReceiver();
  const service = await startTestService({
    rules: {
      "orders.yaml": `bus: orders
rules:
  - name: all
    pattern: {source: [shop]}
    targets:
      - id: structured
        webhook: {url: "${receiver.url}/structured"}
      - id: aws
        webhook: {url: "${receiver.url}/aws"}
        format: aws
`,
    },
  });
  t.after(async () => {
    await service.close();
    await receiver.close();
  });
  const published = await service.post(
    "/v1/buses/orders/cloudevents",
    { specversion: "1.0", id: "evt-1", source: "shop", type: "order.created", data: { total: 5 } },
    { "content-type": "application/cloudevents+json" },
  );
  assert.equal(published.status, 200);
  const [sent] = await receiver.waitFor(1, 5_000, "/structured");
  await receiver.waitFor(1, 5_000, "/aws");

  let trace: { ended: string; deliveries: Array<{ targetId: string; payload: { body: string } }> };
  const deadline = Date.now() + 5_000;
  do {
    trace = (await (await service.get("/v1/events/evt-1/trace?bus=orders")).json()) as typeof trace;
  } while (trace.ended !== "delivered" && Date.now() < deadline);
  assert.equal(trace.ended, "delivered");
  const byTarget = new Map(trace.deliveries.map((d) => [d.targetId, d.payload.body]));
  assert.equal(byTarget.get("structured"), sent!.body, "the trace shows what the receiver got");
  assert.equal(JSON.parse(byTarget.get("aws")!)["detail-type"], "order.created");

  // The service's storage is the embedded one: its state file is open for a look.
  const bodies = (service.storage as SqliteStorage).stateDatabase
    .prepare("SELECT target_id AS target, body FROM succeeded_deliveries ORDER BY target_id")
    .all() as Array<{ target: string; body: string | null }>;
  assert.deepEqual(
    bodies.map((b) => [b.target, b.body === null]),
    [
      ["aws", false],
      ["structured", true],
    ],
    "only the structured body is kept by reference",
  );
});
