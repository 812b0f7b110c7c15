/**
 * Streams in a cluster: every node loads the same stream from its rule files, but only the
 * node that leads runs it, so each event reaches the stream's sink once, not once per node;
 * when the leader goes, another node leads and the stream runs on there.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { requireService } from "../helpers/local-services.js";
import { createReceiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { deleteTestStreams } from "../helpers/test-engine.js";

const NATS_URL = "nats://127.0.0.1:4222";
const natsMissing = await requireService("nats");

/**
 * Starts two nodes on one fresh prefix, each with `rules` in its rule files; closes them,
 * deletes the prefix's streams and the directory after.
 */
async function startTwoNodes(t: TestContext, rules: Record<string, string> = {}): Promise<TestService[]> {
  const prefix = `CL${randomBytes(5).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "relaybus-leadership-"));
  const nodes: TestService[] = [];
  t.after(async () => {
    for (const node of nodes) await node.close().catch(() => undefined);
    await deleteTestStreams(prefix);
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 2; i++) {
    const nodeDir = join(dir, `node-${i}`);
    mkdirSync(nodeDir);
    nodes.push(
      await startTestService({
        dir: nodeDir,
        rules,
        config: { log: { engine: "jetstream", jetstream: { servers: [NATS_URL], streamPrefix: prefix } } },
      }),
    );
  }
  return nodes;
}

async function publish(node: TestService, count: number, from: number): Promise<void> {
  const entries = Array.from({ length: count }, (_, i) => ({ Source: "shop", DetailType: "order", Detail: JSON.stringify({ n: from + i }) }));
  const response = await node.post("/v1/events", { Entries: entries });
  assert.equal(response.status, 200);
  assert.equal(((await response.json()) as { FailedEntryCount: number }).FailedEntryCount, 0);
}

describe("cluster leadership", { skip: natsMissing }, () => {
  test("cluster - a stream of the rule files runs on the leading node only, and on another once the leader leaves", async (t) => {
    const sink = await createReceiver();
    t.after(() => sink.close());
    const rules = {
      "stream.yaml": `bus: default
streams:
  - name: orders-out
    source: {bus: {bus: default, startAt: oldest}}
    sink: {webhook: {url: "${sink.url}/out"}}
    batch: {maxEvents: 10, maxWaitMs: 20}
`,
    };
    const nodes = await startTwoNodes(t, rules);
    const leaders = nodes.map((node) => node.storage.leadership?.isLeader);
    assert.deepEqual(leaders.filter((l) => l === true).length, 1, `one leader: ${JSON.stringify(leaders)}`);
    const leader = nodes.find((node) => node.storage.leadership?.isLeader === true)!;
    const follower = nodes.find((node) => node !== leader)!;

    await publish(follower, 20, 0);
    const eventsAt = (received: { body: string }[]) =>
      received.flatMap((r) => {
        const body = JSON.parse(r.body) as { data: { n: number } } | { data: { n: number } }[];
        return (Array.isArray(body) ? body : [body]).map((e) => e.data.n);
      });
    await sink.waitFor(1, 10_000, "/out");
    let seen: number[] = [];
    const deadline = Date.now() + 10_000;
    while (seen.length < 20 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      seen = eventsAt(sink.requestsTo("/out"));
    }
    await new Promise((r) => setTimeout(r, 500)); // a second runner would have written by now
    seen = eventsAt(sink.requestsTo("/out"));
    assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i), "each event written once");

    // The leader leaves (closing gives the lease up): the other node leads and runs the stream.
    await leader.close();
    nodes.splice(nodes.indexOf(leader), 1);
    const takeoverDeadline = Date.now() + 10_000;
    while (follower.storage.leadership?.isLeader !== true && Date.now() < takeoverDeadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(follower.storage.leadership?.isLeader, true, "the other node leads");
    await publish(follower, 5, 100);
    const laterDeadline = Date.now() + 15_000;
    while (!eventsAt(sink.requestsTo("/out")).includes(104) && Date.now() < laterDeadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = eventsAt(sink.requestsTo("/out"));
    for (let n = 100; n < 105; n++) assert.ok(after.includes(n), `event ${n} written after the takeover`);
    // The old leader shared its last progress before it let the lease go: nothing is written twice.
    assert.equal(after.length, 25, `writes in all: ${after.length} for 25 events`);
  });

  test("cluster - an API stream made through a follower runs on the leader; paused through the follower, it stops there", async (t) => {
    const sink = await createReceiver();
    t.after(() => sink.close());
    const nodes = await startTwoNodes(t);
    const leader = nodes.find((node) => node.storage.leadership?.isLeader === true)!;
    const follower = nodes.find((node) => node !== leader)!;
    const created = await follower.post("/v1/streams", {
      name: "api-out",
      source: { bus: { bus: "default", startAt: "oldest" } },
      sink: { webhook: { url: `${sink.url}/api` } },
      batch: { maxEvents: 10, maxWaitMs: 20 },
    });
    assert.equal(created.status, 201, await created.text());
    await publish(follower, 5, 0);
    await sink.waitFor(1, 10_000, "/api");
    const written = () =>
      sink.requestsTo("/api").flatMap((r) => {
        const body = JSON.parse(r.body) as { data: { n: number } } | { data: { n: number } }[];
        return (Array.isArray(body) ? body : [body]).map((e) => e.data.n);
      });
    const deadline = Date.now() + 10_000;
    while (written().length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(written().sort((a, b) => a - b), [0, 1, 2, 3, 4], "the leader ran the stream made through the follower");

    // Paused through the follower: the leader's runner stops, and events wait.
    assert.equal((await follower.post("/v1/streams/api-out:pause", {})).status, 200);
    const pausedDeadline = Date.now() + 5_000;
    let leaderState = "";
    while (leaderState !== "paused" && Date.now() < pausedDeadline) {
      await new Promise((r) => setTimeout(r, 50));
      leaderState = ((await (await leader.get("/v1/streams/api-out")).json()) as { state: string }).state;
    }
    assert.equal(leaderState, "paused", "the leader took the pause");
    await publish(follower, 3, 100);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(written().filter((n) => n >= 100).length, 0, "nothing written while paused");

    // Resumed through the follower: the rest arrives.
    assert.equal((await follower.post("/v1/streams/api-out:resume", {})).status, 200);
    const resumedDeadline = Date.now() + 10_000;
    while (!written().includes(102) && Date.now() < resumedDeadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok([100, 101, 102].every((n) => written().includes(n)), "written after the resume");
  });
});
