/**
 * Two Relaybus nodes over one JetStream log (the machine's NATS server, a prefix of their
 * own): what one node is told, the other knows within a second; events published to either
 * are delivered once, by one of them. Dead letters, signing secrets and target states made on
 * one node are seen, changed and acted on by the other.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { createReceiver, type ReceivedRequest, type Receiver } from "../helpers/receiver.js";
import { requireService } from "../helpers/local-services.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { deleteTestStreams } from "../helpers/test-engine.js";
import type { JetStreamStorage } from "../../src/log/jetstream/index.js";

const NATS_URL = "nats://127.0.0.1:4222";
const natsMissing = await requireService("nats");

/** Starts `count` nodes sharing one fresh prefix; stops them and deletes the prefix's streams after. */
async function startNodes(
  t: { after(fn: () => Promise<void>): void },
  count: number,
  config: { limits?: { maxEventBytes: number } } = {},
): Promise<TestService[]> {
  const streamPrefix = `CT${randomBytes(5).toString("hex")}`;
  const nodes: TestService[] = [];
  t.after(async () => {
    for (const node of nodes) await node.close();
    await deleteTestStreams(streamPrefix);
  });
  for (let i = 0; i < count; i++) {
    nodes.push(
      await startTestService({
        config: { ...config, log: { engine: "jetstream", jetstream: { servers: [NATS_URL], streamPrefix } } },
      }),
    );
  }
  return nodes;
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

interface ListedDeadLetter {
  id: string;
  eventId: string;
  reason: string;
}

async function deadLettersOf(node: TestService): Promise<ListedDeadLetter[]> {
  const response = await node.get("/v1/dead-letters");
  assert.equal(response.status, 200);
  return ((await response.json()) as { deadLetters: ListedDeadLetter[] }).deadLetters;
}

const lists = async (node: TestService, eventId: string) =>
  (await deadLettersOf(node)).some((letter) => letter.eventId === eventId);

/** Attempts this node made (its `push` meter): only the node that sent a delivery counts it. */
function attemptsMadeBy(node: TestService): number {
  // This node's own count (origin ''): usage reports show the cluster's, every node's attempts.
  const db = (node.storage as JetStreamStorage).stateDatabase;
  return db.prepare<[], number | null>("SELECT SUM(quantity) FROM usage_hourly WHERE meter = 'push' AND origin = ''").pluck().get() ?? 0;
}

/** The node whose own state file holds the finished delivery of `eventId` (never shared). */
function deliveredBy(nodes: Record<string, TestService>, eventId: string): string[] {
  return Object.entries(nodes)
    .filter(([, node]) =>
      node.storage.deliveries
        .deliveriesOfEvent("default", eventId)
        .deliveries.some((d) => d.finishedAtMs !== undefined),
    )
    .map(([name]) => name);
}

function headersOf(request: ReceivedRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (typeof value === "string") out[name] = value;
  return out;
}

/** True when the standardwebhooks package accepts the request with `secret`. */
function verifies(secret: string, request: ReceivedRequest): boolean {
  try {
    new Webhook(secret).verify(request.rawBody.toString("utf8"), headersOf(request));
    return true;
  } catch (error) {
    assert.match(String(error), /No matching signature|Missing required headers/);
    return false;
  }
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
  test("cluster - a dead letter made on one node is listed by the other within a second; a purge or a redrive through the other removes it from both", async (t) => {
    const receiver = await createReceiver();
    t.after(() => receiver.close());
    const [a, b] = await startNodes(t, 2);
    const nodes: Record<string, TestService> = { a: a!, b: b! };
    receiver.always("/dead", { status: 400 }); // a permanent failure: dead at the first attempt
    const rule = { name: "dead", pattern: { source: ["dl"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/dead` } }] };
    assert.equal((await a!.post("/v1/buses/default/rules", rule)).status, 201);
    await eventually("rule on node b", 1_000, async () => (await b!.get("/v1/buses/default/rules/dead")).status === 200);

    /** Publishes one event, waits for its dead letter on both nodes; the node that made it, the other, the letter. */
    const deadLetterOfNewEvent = async (n: number) => {
      const before = { a: attemptsMadeBy(a!), b: attemptsMadeBy(b!) };
      const [eventId] = await putEvents(a!, [{ Source: "dl", DetailType: "n", Detail: JSON.stringify({ n }) }]);
      await eventually("a dead letter on a node", 10_000, async () => (await lists(a!, eventId!)) || (await lists(b!, eventId!)));
      const sharedMs = await eventually("the dead letter on both nodes", 1_000, async () => (await lists(a!, eventId!)) && (await lists(b!, eventId!)));
      const makers = (["a", "b"] as const).filter((name) => attemptsMadeBy(nodes[name]!) > before[name]);
      assert.equal(makers.length, 1, `one node attempted the delivery: ${makers.join(", ")}`);
      const maker = makers[0]!;
      const other = maker === "a" ? "b" : "a";
      const letter = (await deadLettersOf(nodes[other]!)).find((l) => l.eventId === eventId)!;
      assert.match(letter.reason, /400/);
      // The other node holds the row as its maker wrote it.
      assert.deepEqual(nodes[other]!.storage.deliveries.getDeadLetter(letter.id), nodes[maker]!.storage.deliveries.getDeadLetter(letter.id));
      t.diagnostic(`dead letter ${n} made by node ${maker}, listed by node ${other} ${sharedMs} ms after its maker`);
      return { eventId: eventId!, maker: nodes[maker]!, other: nodes[other]!, otherName: other, letter };
    };

    // Purged through the node that did not make it: gone from its maker too.
    const first = await deadLetterOfNewEvent(1);
    const purged = await first.other.post("/v1/dead-letters:purge", { ids: [first.letter.id] });
    assert.deepEqual(await purged.json(), { purged: 1, notFound: [] });
    await eventually("purged dead letter gone from its maker", 1_000, async () => !(await lists(first.maker, first.eventId)));

    // Redriven through the node that did not make it: that node delivers it, and it leaves both lists.
    const second = await deadLetterOfNewEvent(2);
    receiver.always("/dead", { status: 200 });
    const sentBefore = receiver.requestsTo("/dead").length;
    const redriven = await second.other.post("/v1/dead-letters:redrive", { ids: [second.letter.id] });
    assert.equal(((await redriven.json()) as { redriven: number }).redriven, 1);
    const requests = await receiver.waitFor(sentBefore + 1, 10_000, "/dead");
    assert.equal(requests[sentBefore]!.headers["webhook-id"], second.letter.id, "the redriven delivery, with its id");
    await eventually("redriven dead letter gone from both nodes", 1_000, async () => !(await lists(a!, second.eventId)) && !(await lists(b!, second.eventId)));
    // The sender records the attempt once the answer is in, a moment after the receiver has it.
    await eventually("the redriven delivery recorded", 2_000, async () => deliveredBy(nodes, second.eventId).length > 0);
    assert.deepEqual(deliveredBy(nodes, second.eventId), [second.otherName], "the redriving node delivered it");
    // A little longer: neither node sends it again, nor brings the dead letter back.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.requestsTo("/dead").length, sentBefore + 1);
    assert.equal(await lists(a!, second.eventId) || await lists(b!, second.eventId), false);
  });

  test("cluster - a signing secret created through one node signs the other node's deliveries; revoked through the other, neither signs", async (t) => {
    const receiver = await createReceiver();
    t.after(() => receiver.close());
    const [a, b] = await startNodes(t, 2);
    const nodes: Record<string, TestService> = { a: a!, b: b! };
    const rule = { name: "signed", pattern: { source: ["sig"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/hook` } }] };
    assert.equal((await a!.post("/v1/buses/default/rules", rule)).status, 201);
    await eventually("rule on node b", 1_000, async () => (await b!.get("/v1/buses/default/rules/signed")).status === 200);
    const secrets = "/v1/buses/default/rules/signed/targets/hook/secrets";

    const created = await a!.post(secrets, {});
    assert.equal(created.status, 201);
    const { id, secret } = (await created.json()) as { id: string; secret: string };
    const listedMs = await eventually("secret listed by node b", 1_000, async () => {
      const listed = (await (await b!.get(secrets)).json()) as { secrets: { id: string }[] };
      return listed.secrets.some((s) => s.id === id);
    });

    /** Publishes until each node has delivered at least one event; the requests, by the node that sent them. */
    let round = 0;
    const deliverFromBoth = async () => {
      const sent: Record<string, ReceivedRequest[]> = { a: [], b: [] };
      for (let i = 0; i < 10 && (sent.a!.length === 0 || sent.b!.length === 0); i++) {
        const before = receiver.requestsTo("/hook").length;
        const entries = Array.from({ length: 10 }, (_, k) => ({ Source: "sig", DetailType: "n", Detail: JSON.stringify({ round, i, k }) }));
        round++;
        await putEvents(i % 2 === 0 ? b! : a!, entries);
        const requests = (await receiver.waitFor(before + 10, 10_000, "/hook")).slice(before);
        for (const request of requests) {
          const eventId = (JSON.parse(request.body) as { id: string }).id;
          await eventually("delivery recorded", 1_000, async () => deliveredBy(nodes, eventId).length === 1);
          sent[deliveredBy(nodes, eventId)[0]!]!.push(request);
        }
      }
      assert.ok(sent.a!.length > 0 && sent.b!.length > 0, `both nodes delivered (a ${sent.a!.length}, b ${sent.b!.length})`);
      return sent;
    };

    const signed = await deliverFromBoth();
    for (const [name, requests] of Object.entries(signed)) {
      for (const request of requests) assert.ok(verifies(secret, request), `node ${name}'s delivery verifies with the secret`);
    }
    assert.ok(!verifies(`whsec_${randomBytes(32).toString("base64")}`, signed.b![0]!), "another secret does not verify");

    // Revoked through node b: node a, which created it and has signed with it, stops too.
    assert.equal((await fetch(`${b!.url}${secrets}/${id}`, { method: "DELETE" })).status, 204);
    await eventually("secret gone from node a", 1_000, async () => {
      const listed = (await (await a!.get(secrets)).json()) as { secrets: { id: string }[] };
      return !listed.secrets.some((s) => s.id === id);
    });
    const unsigned = await deliverFromBoth();
    for (const [name, requests] of Object.entries(unsigned)) {
      for (const request of requests) assert.equal(request.headers["webhook-signature"], undefined, `node ${name} no longer signs`);
    }
    t.diagnostic(`secret listed by node b after ${listedMs} ms; deliveries signed: a ${signed.a!.length}, b ${signed.b!.length}`);
  });

  test("cluster - a target disabled through one node is disabled on the other, which dead-letters its deliveries; enabled through the other, both deliver again", async (t) => {
    const receiver = await createReceiver();
    t.after(() => receiver.close());
    const [a, b] = await startNodes(t, 2);
    const rule = { name: "gated", pattern: { source: ["gate"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/gated` } }] };
    assert.equal((await a!.post("/v1/buses/default/rules", rule)).status, 201);
    await eventually("rule on node b", 1_000, async () => (await b!.get("/v1/buses/default/rules/gated")).status === 200);
    const target = "/v1/buses/default/rules/gated/targets/hook";
    const stateOn = async (node: TestService) => ((await (await node.get(`${target}/status`)).json()) as { state: string; cause?: string });
    assert.equal((await stateOn(b!)).state, "enabled");

    const disabled = await a!.post(`${target}:disable`, { reason: "maintenance" });
    assert.equal(disabled.status, 200);
    const disabledMs = await eventually("target disabled on node b", 1_000, async () => (await stateOn(b!)).state === "disabled");
    assert.equal((await stateOn(b!)).cause, "api");

    // Whichever node dispatches them, nothing is sent: both dead-letter the deliveries.
    const ids = await putEvents(b!, Array.from({ length: 10 }, (_, k) => ({ Source: "gate", DetailType: "n", Detail: JSON.stringify({ k }) })));
    await eventually("every delivery dead-lettered", 10_000, async () => {
      const letters = await deadLettersOf(b!);
      return ids.every((id) => letters.some((l) => l.eventId === id && l.reason.startsWith("target disabled")));
    });
    assert.equal(receiver.requestsTo("/gated").length, 0);

    // Enabled through node b: node a, which disabled it, delivers again too.
    assert.equal((await b!.post(`${target}:enable`, {})).status, 200);
    await eventually("target enabled on node a", 1_000, async () => (await stateOn(a!)).state === "enabled");
    const more = await putEvents(a!, Array.from({ length: 10 }, (_, k) => ({ Source: "gate", DetailType: "n", Detail: JSON.stringify({ again: k }) })));
    const received = await receiver.waitFor(more.length, 10_000, "/gated");
    assert.deepEqual(received.map((r) => (JSON.parse(r.body) as { id: string }).id).sort(), [...more].sort());
    t.diagnostic(`disabled on node b after ${disabledMs} ms`);
  });
  test("cluster - a dead letter too large for the bucket stays on its node, and the changes after it still reach the other node", async (t) => {
    const receiver = await createReceiver();
    t.after(() => receiver.close());
    // A 300 KB event of quotes: each is escaped again in the request, then in the dead letter's row (8 bytes each).
    const [a, b] = await startNodes(t, 2, { limits: { maxEventBytes: 400_000 } });
    receiver.always("/big", { status: 400 });
    const rule = { name: "big", pattern: { source: ["big"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/big` } }] };
    assert.equal((await a!.post("/v1/buses/default/rules", rule)).status, 201);
    await eventually("rule on node b", 1_000, async () => (await b!.get("/v1/buses/default/rules/big")).status === 200);

    const [eventId] = await putEvents(a!, [{ Source: "big", DetailType: "n", Detail: JSON.stringify({ q: '"'.repeat(150_000) }) }]);
    await eventually("the dead letter on a node", 10_000, async () => (await lists(a!, eventId!)) || (await lists(b!, eventId!)));
    const [maker, other] = (await lists(a!, eventId!)) ? [a!, b!] : [b!, a!];
    // Made after the dead letter on the same node, so behind it in that node's outbox.
    assert.equal((await maker.post("/v1/buses", { name: "after-big" })).status, 201);
    await eventually("the bus made after it on the other node", 1_000, async () => (await other.get("/v1/buses/after-big")).status === 200);
    assert.equal(await lists(other, eventId!), false, "the too-large dead letter stays on its node");
    assert.equal(await lists(maker, eventId!), true);
  });

  test("cluster - every node reports the cluster's usage: publishes once, and the deliveries both nodes made", async (t) => {
    const receiver = await createReceiver();
    t.after(() => receiver.close());
    const [a, b] = await startNodes(t, 2);
    const rule = { name: "all", pattern: { source: ["meter"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/m` } }] };
    assert.equal((await a!.post("/v1/buses/default/rules", rule)).status, 201);
    await eventually("rule on node b", 1_000, async () => (await b!.get("/v1/buses/default/rules/all")).status === 200);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const entries = Array.from({ length: 10 }, (_, k) => ({ Source: "meter", DetailType: "n", Detail: JSON.stringify({ i, k }) }));
      ids.push(...(await putEvents(i % 2 === 0 ? a! : b!, entries)));
    }
    await receiver.waitFor(ids.length, 20_000, "/m");
    const heldByA = ids.filter((id) => a!.storage.deliveries.deliveriesOfEvent("default", id).deliveries.length > 0).length;
    assert.ok(heldByA > 0 && heldByA < ids.length, `both nodes delivered (a made ${heldByA} of ${ids.length})`);

    const totals = async (node: TestService) => {
      const response = await node.get("/v1/usage?groupBy=meter");
      assert.equal(response.status, 200);
      const report = (await response.json()) as { totals: { meter: string; quantity: number }[] };
      return Object.fromEntries(report.totals.map((total) => [total.meter, total.quantity]));
    };
    // Each node counted its own attempts; the other's arrive within its sharing interval (2 s).
    let seen: Record<string, number>[] = [];
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      seen = [await totals(a!), await totals(b!)];
      if (seen.every((t) => t.publish === ids.length && t.push === ids.length)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(seen, [
      { publish: ids.length, push: ids.length },
      { publish: ids.length, push: ids.length },
    ]);
  });

  test("cluster - an API key made through one node works on the other; revoked through the other, neither takes it", async (t) => {
    const [a, b] = await startNodes(t, 2);
    const call = (node: TestService, method: string, path: string, token?: string, body?: unknown) =>
      fetch(`${node.url}${path}`, {
        method,
        headers: {
          "content-type": "application/json",
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    // The first key, made on the machine without a key (the bootstrap).
    const created = await call(a!, "POST", "/v1/keys", undefined, { name: "root", scopes: ["admin"] });
    assert.equal(created.status, 201, await created.clone().text());
    const admin = (await created.json()) as { id: string; token: string };
    const ms = await eventually("the key works on node b", 1_000, async () => (await call(b!, "GET", "/v1/keys", admin.token)).status === 200);
    assert.equal((await call(b!, "GET", "/v1/keys")).status, 401, "node b asks for a key now");
    t.diagnostic(`the key worked on node b ${ms} ms after it was made on node a`);

    // Used on both (their last uses stay their own); revoked through b: refused by a too.
    assert.equal((await call(a!, "GET", "/v1/keys", admin.token)).status, 200);
    assert.equal((await call(b!, "POST", `/v1/keys/${admin.id}:revoke`, admin.token)).status, 200);
    await eventually("the revoked key refused by node a", 1_000, async () => (await call(a!, "GET", "/v1/buses", admin.token)).status === 401);
  });
});
