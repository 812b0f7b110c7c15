/**
 * A stream's runtime row in a cluster, through two JetStream storages on one prefix (real
 * NATS, no service): the leader writes the stream's progress and state, the other nodes
 * write only its desired state (pause, resume). The service-level test of the same is in
 * `cluster-leadership.test.ts`; this one sends the leader's own change of the row at the
 * moment of each pause and resume, where that test meets it only now and then.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { connect } from "nats";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { openJetStreamStorage, type JetStreamStorage } from "../../src/log/jetstream/index.js";
import { requireService } from "../helpers/local-services.js";
import { deleteTestStreams, TEST_NATS_URL, testStreamPrefix } from "../helpers/test-engine.js";

const natsMissing = await requireService("nats");

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A fresh stream prefix and a directory for nodes' data: `open(name)` opens a node's storage
 * on it. After the test the nodes are closed, the prefix's streams deleted, the directory removed.
 */
function tempCluster(t: TestContext): { streamPrefix: string; open(name: string): Promise<JetStreamStorage> } {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-cluster-runtime-"));
  const streamPrefix = testStreamPrefix(dir);
  const nodes: JetStreamStorage[] = [];
  t.after(async () => {
    for (const node of nodes) await node.close().catch(() => undefined);
    await deleteTestStreams(streamPrefix);
    rmSync(dir, { recursive: true, force: true });
  });
  const open = async (name: string) => {
    const node = await openJetStreamStorage({
      dataDir: join(dir, name),
      jetstream: { ...DEFAULT_CONFIG.log.jetstream, servers: [TEST_NATS_URL], streamPrefix },
    });
    nodes.push(node);
    return node;
  };
  return { streamPrefix, open };
}

test("cluster stream runtime - a pause or resume made through a follower reaches the leader though the leader's own change of the row is on its way", { skip: natsMissing }, async (t) => {
  const cluster = tempCluster(t);
  const nodes = [await cluster.open("a"), await cluster.open("b")];
  await waitFor("a node leads", () => nodes.some((node) => node.leadership?.isLeader === true), 15_000);
  const leader = nodes.find((node) => node.leadership?.isLeader === true)!;
  const follower = nodes.find((node) => node !== leader)!;
  leader.streams.ensureRuntime("orders-out", "running", 1, Date.now());
  await waitFor("the follower has the runtime", () => follower.streams.runtime("orders-out") !== undefined, 10_000);

  // In each round the leader changes the row (a change of reason is shared at once, as a
  // batch's failure is) and, in the same moment, the follower pauses or resumes the stream:
  // the two reach the bucket in either order, and in about half of the rounds the follower's
  // change comes to the leader before the echo of its own (which carries the old desired state).
  for (let round = 0; round < 12; round++) {
    const desired = round % 2 === 0 ? "paused" : "running";
    leader.streams.setState("orders-out", "running", `round ${round}`, Date.now());
    follower.streams.setDesired("orders-out", desired, Date.now());
    await waitFor(`the leader takes ${desired} in round ${round}`, () => leader.streams.runtime("orders-out")?.desired === desired, 3_000);
    // The leader's next change carries the desired state back to the follower.
    leader.streams.setState("orders-out", desired, undefined, Date.now());
    await waitFor(
      `the follower shows the leader's ${desired} state in round ${round}`,
      () => follower.streams.runtime("orders-out")?.state === desired && follower.streams.runtime("orders-out")?.desired === desired,
      3_000,
    );
  }
});

test("cluster stream runtime - a state bucket made when it kept one value per key is raised to keep 8", { skip: natsMissing }, async (t) => {
  const { streamPrefix, open } = tempCluster(t);
  // The bucket as an earlier version made it: one value per key.
  const connection = await connect({ servers: TEST_NATS_URL });
  try {
    await connection.jetstream().views.kv(`${streamPrefix}_STATE`, { history: 1 });
    await (await open("a")).close();
    const jsm = await connection.jetstreamManager();
    const { config } = await jsm.streams.info(`KV_${streamPrefix}_STATE`);
    assert.equal(config.max_msgs_per_subject, 8);
  } finally {
    await connection.close();
  }
});
