import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

function orderRules(receiverUrl: string): string {
  return `bus: orders
rules:
  - name: big-orders
    description: Orders over 100 go to fulfilment
    pattern:
      source: [shop.orders]
      detail-type: [order.created]
      detail:
        total: [{numeric: [">", 100]}]
    targets:
      - id: fulfilment
        webhook:
          url: ${receiverUrl}/fulfil
        format: transform
        transform: '{"orderId": data.id, "amount": data.total}'
      - id: audit
        webhook:
          url: ${receiverUrl}/audit
        format: cloudevents-binary
  - name: all-aws
    pattern:
      source: [shop.orders]
    targets:
      - id: aws-envelope
        webhook:
          url: ${receiverUrl}/aws
        format: aws
`;
}

describe("end to end", () => {
  let receiver: Receiver;
  let service: TestService;

  before(async () => {
    receiver = await createReceiver();
    service = await startTestService({ rules: { "orders.yaml": orderRules(receiver.url) } });
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  test("end to end - a PutEvents entry reaches its webhook, transformed by the rule", async () => {
    const response = await service.post("/v1/events", {
      Entries: [
        { EventBusName: "orders", Source: "shop.orders", DetailType: "order.created", Detail: JSON.stringify({ id: "o-1", total: 250 }) },
        { EventBusName: "orders", Source: "shop.orders", DetailType: "order.created", Detail: JSON.stringify({ id: "o-2", total: 50 }) },
      ],
    });
    assert.equal(response.status, 200);
    const result = (await response.json()) as { FailedEntryCount: number; Entries: { EventId?: string }[] };
    assert.equal(result.FailedEntryCount, 0);
    assert.equal(result.Entries.length, 2);
    const [big, small] = result.Entries.map((e) => e.EventId);
    assert.ok(big && small);

    const fulfil = await receiver.waitFor(1, 10_000, "/fulfil");
    assert.deepEqual(JSON.parse(fulfil[0]!.body), { orderId: "o-1", amount: 250 });
    assert.ok(fulfil[0]!.headers["webhook-id"], "every delivery carries a webhook-id");

    const audit = await receiver.waitFor(1, 10_000, "/audit");
    assert.equal(audit[0]!.headers["ce-id"], big);
    assert.equal(audit[0]!.headers["ce-type"], "order.created");
    assert.equal(audit[0]!.headers["ce-source"], "shop.orders");
    assert.deepEqual(JSON.parse(audit[0]!.body), { id: "o-1", total: 250 });

    // The second rule matches both orders, in the AWS envelope.
    const aws = await receiver.waitFor(2, 10_000, "/aws");
    const envelopes = aws.map((r) => JSON.parse(r.body) as Record<string, unknown>);
    assert.deepEqual(new Set(envelopes.map((e) => e.id)), new Set([big, small]));
    for (const envelope of envelopes) {
      assert.equal(envelope["detail-type"], "order.created");
      assert.equal(envelope.source, "shop.orders");
      assert.equal(typeof envelope.detail, "object");
    }
    // The small order never reached the big-orders targets.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(receiver.requestsTo("/fulfil").length, 1);
  });

  test("end to end - CloudEvents in binary, structured and batch mode are accepted and delivered", async () => {
    const before = receiver.requestsTo("/aws").length;
    const binary = await fetch(`${service.url}/v1/buses/orders/cloudevents`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "bin-1",
        "ce-source": "shop.orders",
        "ce-type": "order.created",
      },
      body: JSON.stringify({ id: "o-3", total: 500 }),
    });
    assert.equal(binary.status, 200, await binary.clone().text());

    const structured = await fetch(`${service.url}/v1/buses/orders/cloudevents`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id: "str-1", source: "shop.orders", type: "order.updated", data: { id: "o-4" } }),
    });
    assert.equal(structured.status, 200, await structured.clone().text());

    const batch = await fetch(`${service.url}/v1/buses/orders/cloudevents`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify([
        { specversion: "1.0", id: "bat-1", source: "shop.orders", type: "order.updated" },
        { specversion: "1.0", id: "bat-2", type: "order.updated" },
      ]),
    });
    assert.equal(batch.status, 200);
    const batchText = await batch.text();
    assert.match(batchText, /bat-1/);
    assert.match(batchText, /source/, "the failed entry's error names the missing attribute");

    const delivered = await receiver.waitFor(before + 3, 10_000, "/aws");
    const ids = new Set(delivered.map((r) => (JSON.parse(r.body) as { id: string }).id));
    for (const id of ["bin-1", "str-1", "bat-1"]) assert.ok(ids.has(id), `${id} delivered`);
    assert.ok(!ids.has("bat-2"), "the invalid batch entry was not stored");
  });

  test("end to end - the log holds every accepted event with its size and units", async () => {
    const response = await service.get("/v1/buses/orders/events?limit=100");
    assert.equal(response.status, 200);
    const page = (await response.json()) as { events: { offset: number; sizeBytes: number; units: number; event: { id: string } }[] };
    assert.ok(page.events.length >= 5);
    page.events.forEach((e, i) => {
      assert.equal(e.offset, i + 1, "offsets are gap-free from 1");
      assert.ok(e.sizeBytes > 0);
      assert.equal(e.units, Math.max(1, Math.ceil(e.sizeBytes / 65536)));
    });
  });

  test("end to end - an unknown bus is a per-entry error and a 404 for CloudEvents", async () => {
    const response = await service.post("/v1/events", {
      Entries: [
        { EventBusName: "nope", Source: "a", DetailType: "b", Detail: "{}" },
        { Source: "a", DetailType: "b", Detail: "{}" },
      ],
    });
    const result = (await response.json()) as { FailedEntryCount: number; Entries: { ErrorCode?: string; EventId?: string }[] };
    assert.equal(result.FailedEntryCount, 1);
    assert.equal(result.Entries[0]!.ErrorCode, "BusNotFound");
    assert.ok(result.Entries[1]!.EventId, "the entry for the default bus is accepted");

    const ce = await fetch(`${service.url}/v1/buses/nope/cloudevents`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id: "x", source: "a", type: "b" }),
    });
    assert.equal(ce.status, 404);
    const body = (await ce.json()) as { error: { code: string; message: string; requestId: string } };
    assert.equal(body.error.code, "BusNotFound");
    assert.match(body.error.message, /nope/);
    assert.ok(body.error.requestId);
  });
});
