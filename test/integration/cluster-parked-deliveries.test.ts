/**
 * Long retries in a cluster: a delivery still retrying after `parkAfterSeconds` is parked in
 * the cluster's queue and its event let go; when the node holding it dies, another node
 * takes it when due and finishes it. Two nodes as processes (so one can be SIGKILLed) on the
 * machine's NATS server.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { connect } from "nats";
import { requireService } from "../helpers/local-services.js";
import { createReceiver } from "../helpers/receiver.js";
import { freePort, spawnRelaybus, type RelaybusProcess } from "../helpers/relaybus-process.js";
import { deleteTestStreams } from "../helpers/test-engine.js";

const NATS_URL = "nats://127.0.0.1:4222";
const natsMissing = await requireService("nats");

async function withJetStream<T>(work: (jsm: Awaited<ReturnType<Awaited<ReturnType<typeof connect>>["jetstreamManager"]>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: NATS_URL });
  try {
    return await work(await nc.jetstreamManager());
  } finally {
    await nc.close();
  }
}

describe("cluster parked deliveries", { skip: natsMissing }, () => {
  test("cluster - a delivery retrying for long is parked, and finished by the other node after its node is killed", async (t) => {
    const prefix = `PK${randomBytes(5).toString("hex")}`;
    const dir = mkdtempSync(join(tmpdir(), "relaybus-parked-"));
    const receiver = await createReceiver();
    const nodes: RelaybusProcess[] = [];
    t.after(async () => {
      for (const node of nodes) await node.kill().catch(() => undefined);
      await receiver.close();
      await deleteTestStreams(prefix);
      rmSync(dir, { recursive: true, force: true });
    });

    receiver.always("/flaky", { status: 503 });
    const rulesDir = join(dir, "rules");
    mkdirSync(rulesDir);
    writeFileSync(
      join(rulesDir, "flaky.yaml"),
      `bus: default\nrules:\n  - name: flaky\n    pattern: {source: [shop]}\n    targets:\n      - id: hook\n        webhook: {url: "${receiver.url}/flaky"}\n        retry: {maxAttempts: 185, baseDelayMs: 300, maxDelayMs: 600}\n        pacing: {circuitBreaker: {failureThreshold: 3, openSeconds: 1, maxOpenSeconds: 2}}\n`,
    );
    const configPath = join(dir, "relaybus.yaml");
    writeFileSync(
      configPath,
      `log:\n  engine: jetstream\n  jetstream:\n    servers: ["${NATS_URL}"]\n    streamPrefix: ${prefix}\n    claimSeconds: 3\n    parkAfterSeconds: 2\n`,
    );
    for (let i = 0; i < 2; i++) {
      nodes.push(await spawnRelaybus({ port: await freePort(), dataDir: join(dir, `node-${i}`), rulesDir, env: { RELAYBUS_CONFIG: configPath } }));
    }

    const entries = Array.from({ length: 6 }, (_, i) => ({ Source: "shop", DetailType: "order", Detail: JSON.stringify({ i }) }));
    const response = await fetch(`${nodes[0]!.url}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Entries: entries }),
    });
    assert.equal(response.status, 200);
    const ids = ((await response.json()) as { Entries: { EventId: string }[] }).Entries.map((e) => e.EventId);

    // Retrying (503) past parkAfterSeconds: the deliveries go to the cluster's queue, and the
    // dispatch consumer has nothing left unacknowledged.
    let parkedSeen = 0;
    let unacknowledged = -1;
    const deadline = Date.now() + 20_000;
    while ((parkedSeen === 0 || unacknowledged !== 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      [parkedSeen, unacknowledged] = await withJetStream(async (jsm) => [
        (await jsm.streams.info(`${prefix}_PARKED`)).state.messages + (await jsm.consumers.info(`${prefix}_PARKED`, "parked")).num_ack_pending,
        (await jsm.consumers.info(`${prefix}_LOG_default`, "dispatch")).num_ack_pending,
      ]);
    }
    assert.ok(parkedSeen > 0, `deliveries were parked in the cluster (parked ${parkedSeen}, unacknowledged events ${unacknowledged})`);
    assert.equal(unacknowledged, 0, "their events were let go");
    const attemptsBefore = receiver.requestsTo("/flaky").length;

    // One node dies with whatever it held; the target recovers; the other node finishes every delivery.
    await nodes[0]!.kill();
    receiver.always("/flaky", { status: 200 });
    const recoveredFrom = receiver.requestsTo("/flaky").length; // every request from here on gets 200
    const finished = new Set<string>();
    const finishDeadline = Date.now() + 30_000;
    while (finished.size < ids.length && Date.now() < finishDeadline) {
      await new Promise((r) => setTimeout(r, 200));
      for (const request of receiver.requestsTo("/flaky").slice(recoveredFrom)) {
        finished.add((JSON.parse(request.body) as { id: string }).id);
      }
    }
    if (finished.size < ids.length) t.diagnostic(`the survivor said:\n${nodes[1]!.output().slice(-3000)}`);
    assert.deepEqual([...finished].sort(), [...ids].sort(), "every delivery succeeded after the kill, sent by the survivor");
    // And they ended: the survivor's dead letters are empty and the queue drains.
    const drainDeadline = Date.now() + 15_000;
    let left = -1;
    while (left !== 0 && Date.now() < drainDeadline) {
      await new Promise((r) => setTimeout(r, 200));
      left = await withJetStream(async (jsm) => (await jsm.streams.info(`${prefix}_PARKED`)).state.messages);
    }
    assert.equal(left, 0, "no parked delivery is left");
    t.diagnostic(`attempts before the kill: ${attemptsBefore}; after the target recovered: ${receiver.requestsTo("/flaky").length - recoveredFrom}`);
  });
});
