/**
 * Two Relaybus nodes over one JetStream log (the machine's NATS server, a prefix of their
 * own): what one node is told, the other knows within a second; events published to either
 * are delivered once, by one of them.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { connect } from "nats";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { requireService } from "../helpers/local-services.js";
import { startTestService, type TestService } from "../helpers/service.js";

const NATS_URL = "nats://127.0.0.1:4222";
const natsMissing = await requireService("nats");

/** Starts `count` nodes sharing one fresh prefix; stops them and deletes the prefix's streams after. */
async function startNodes(t: { after(fn: () => Promise<void>): void }, count: number): Promise<TestService[]> {
  const streamPrefix = `CT${randomBytes(5).toString("hex")}`;
  const nodes: TestService[] = [];
  t.after(async () => {
    for (const node of nodes) await node.close();
    await deleteStreams(streamPrefix);
  });
  for (let i = 0; i < count; i++) {
    nodes.push(
      await startTestService({
        config: { log: { engine: "jetstream", jetstream: { servers: [NATS_URL], streamPrefix } } },
      }),
    );
  }
  return nodes;
}

async function deleteStreams(prefix: string): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  try {
    const jsm = await nc.jetstreamManager();
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`${prefix}_`) || name === `KV_${prefix}_STATE`) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}

/** Polls `probe` until it returns true; fails after `timeoutMs` with `what`. */
async function eventually(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function putEvents(node: TestService, entries: object[]): Promise<string[]> {
  const response = await node.post("/v1/events", { Entries: entries });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { FailedEntryCount: number; Entries: { EventId: string }[] };
  assert.equal(body.FailedEntryCount, 0);
  return body.Entries.map((e) => e.EventId);
}

describe("cluster nodes over one JetStream log", { skip: natsMissing }, () => {
  test("cluster - a bus, a rule and a connection made on one node are known to the other within a second", async (t) => {
    const [a, b] = await startNodes(t, 2);
    const receiver: Receiver = await createReceiver();
    t.after(() => receiver.close());

    assert.equal((await a!.post("/v1/buses", { name: "orders.eu" })).status, 201);
    const busMs = await eventually("bus on node b", 1_000, async () => (await b!.get("/v1/buses/orders.eu")).status === 200);

    const rule = {
      name: "to-receiver",
      pattern: { source: ["shop"] },
      targets: [{ id: "hook", webhook: { url: `${receiver.url}/orders` } }],
    };
    assert.equal((await a!.post("/v1/buses/orders.eu/rules", rule)).status, 201);
    const ruleMs = await eventually(
      "rule on node b",
      1_000,
      async () => (await b!.get("/v1/buses/orders.eu/rules/to-receiver")).status === 200,
    );
    // Node b routes with it: an event published to b reaches the rule's target.
    const [id] = await putEvents(b!, [{ Source: "shop", DetailType: "order", Detail: "{}", EventBusName: "orders.eu" }]);
    const [delivered] = await receiver.waitFor(1, 10_000, "/orders");
    assert.equal(JSON.parse(delivered!.body).id, id);

    const put = await fetch(`${b!.url}/v1/connections/crm`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ authorization: { apiKey: { header: "x-api-key", value: "s3cret" } } }),
    });
    assert.ok(put.status === 200 || put.status === 201, `PUT connection: ${put.status} ${await put.text()}`);
    const connectionMs = await eventually("connection on node a", 1_000, async () => (await a!.get("/v1/connections/crm")).status === 200);

    // A deletion travels too.
    assert.equal((await fetch(`${b!.url}/v1/buses/orders.eu/rules/to-receiver`, { method: "DELETE" })).status, 204);
    await eventually("rule deleted on node a", 1_000, async () => (await a!.get("/v1/buses/orders.eu/rules/to-receiver")).status === 404);
    t.diagnostic(`seen on the other node after: bus ${busMs} ms, rule ${ruleMs} ms, connection ${connectionMs} ms`);
  });

  test("cluster - events published to both nodes are each delivered once, the work split between the nodes", async (t) => {
    const receiver = await createReceiver();
    t.after(() => receiver.close());
    const [a, b] = await startNodes(t, 2);
    const rule = { name: "all", pattern: { source: ["load"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/all` } }] };
    assert.equal((await a!.post("/v1/buses/default/rules", rule)).status, 201);
    await eventually("rule on node b", 1_000, async () => (await b!.get("/v1/buses/default/rules/all")).status === 200);

    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const node = i % 2 === 0 ? a! : b!;
      const entries = Array.from({ length: 10 }, (_, k) => ({ Source: "load", DetailType: "n", Detail: JSON.stringify({ i, k }) }));
      ids.push(...(await putEvents(node, entries)));
    }
    const received = await receiver.waitFor(ids.length, 20_000, "/all");
    // A little longer: a second delivery of any event would show up now.
    await new Promise((r) => setTimeout(r, 500));
    const counts = new Map<string, number>();
    for (const request of receiver.requestsTo("/all")) {
      const id = (JSON.parse(request.body) as { id: string }).id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.equal(received.length >= ids.length, true);
    assert.deepEqual([...ids].sort(), [...counts.keys()].sort(), "every published event arrived");
    const repeated = [...counts.entries()].filter(([, n]) => n > 1);
    assert.deepEqual(repeated, [], "no event was delivered twice while both nodes were up");
    // Both nodes dispatched: each holds some of the deliveries in its own state file.
    const heldByA = ids.filter((id) => a!.storage.deliveries.deliveriesOfEvent("default", id).deliveries.length > 0).length;
    const heldByB = ids.filter((id) => b!.storage.deliveries.deliveriesOfEvent("default", id).deliveries.length > 0).length;
    assert.equal(heldByA + heldByB, ids.length, "each event's delivery is recorded by exactly one node");
    t.diagnostic(`deliveries made by node a: ${heldByA}, by node b: ${heldByB}`);
    assert.ok(heldByA > 0 && heldByB > 0, `both nodes took work (a ${heldByA}, b ${heldByB})`);
  });
});
