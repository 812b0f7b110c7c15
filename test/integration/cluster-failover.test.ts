/**
 * The distributed mode's acceptance test: three NATS servers (replicas 3) and three Relaybus
 * nodes, a steady load through all nodes, and in the middle one Relaybus node and one NATS
 * server killed with SIGKILL. Every acked event must reach its webhook at least once
 * (duplicates are counted and reported), and the usage of a surviving node must count every
 * event of the log once.
 *
 * The load is paced, not as fast as the nodes answer: unpaced, it grew with the speed of
 * ingest (60,000-70,000 events in 14 s by late 2026), more than the two surviving nodes
 * deliver to a 100 ms receiver on a 2-core machine in any fixed time. And the wait for
 * delivery ends when delivery stops making progress, not at a fixed deadline: a test that
 * fails because the machine was slow tells nothing about events being lost.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect } from "nats";
import { findNatsServerBinary, startNatsCluster, type NatsCluster } from "../../src/cli/nats-cluster.js";
import { createReceiver } from "../helpers/receiver.js";
import { freePort, spawnRelaybus, type RelaybusProcess } from "../helpers/relaybus-process.js";

const binary = findNatsServerBinary();
const LOAD_MS = 14_000;
const KILL_NODE_AT_MS = 4_000;
const KILL_NATS_AT_MS = 7_000;
/** Events per PutEvents request. */
const ENTRIES = 10;
/** One PutEvents request per producer at most this often: 3 producers send up to 1,200 events/s. */
const REQUEST_INTERVAL_MS = 25;
/**
 * Delivery has stopped when no missing event reached the webhook for this long. It is well
 * above what can hold an event back while the cluster still works: the claim time (5 s), the
 * stuck-consumer repair (three claim times, checked every claim time), a delivery lease lost
 * with a stalled attempt (request timeout + 30 s).
 */
const NO_PROGRESS_MS = 60_000;

test(
  "cluster failover - 3 NATS servers and 3 nodes under load; one node and one server killed; every acked event delivered, usage equals the log",
  { skip: binary === undefined ? "no nats-server binary on this machine" : false, timeout: 300_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "relaybus-failover-"));
    const receiver = await createReceiver();
    const clientPorts = [await freePort(), await freePort(), await freePort()];
    const clusterPorts = [await freePort(), await freePort(), await freePort()];
    // startNatsCluster stops what it started when it fails.
    const cluster: NatsCluster = await startNatsCluster({ clientPorts, clusterPorts, dir: join(dir, "nats"), binary: binary! });
    const nodes: RelaybusProcess[] = [];
    t.after(async () => {
      for (const node of nodes) await node.kill().catch(() => undefined);
      await cluster.stop();
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await cluster.waitForJetStream(60_000);

    // The receiver takes 100 ms to answer, so every node always has deliveries in flight: the
    // node killed dies with some of its events delivered but not acknowledged to the cluster.
    receiver.always("/load", { status: 200, delayMs: 100 });
    const rulesDir = join(dir, "rules");
    mkdirSync(rulesDir);
    writeFileSync(
      join(rulesDir, "load.yaml"),
      `bus: default\nrules:\n  - name: load\n    pattern: {source: [load]}\n    targets:\n      - id: hook\n        webhook: {url: "${receiver.url}/load"}\n        retry: {maxAttempts: 50, baseDelayMs: 100, maxDelayMs: 1000}\n`,
    );
    const configPath = join(dir, "relaybus.yaml");
    writeFileSync(
      configPath,
      `log:\n  engine: jetstream\n  jetstream:\n    servers: [${cluster.urls.map((u) => `"${u}"`).join(", ")}]\n    replicas: 3\n    streamPrefix: FAILOVER\n    claimSeconds: 5\n`,
    );
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await spawnRelaybus({
          port: await freePort(),
          dataDir: join(dir, `node-${i + 1}`),
          rulesDir,
          env: { RELAYBUS_CONFIG: configPath },
        }),
      );
    }

    // Load: one producer per node, each sending batches as fast as its node answers; a
    // producer whose node is gone moves on to the next node. Only 200 answers count as acks.
    const acked = new Set<string>();
    let failedRequests = 0;
    let sequence = 0;
    const killed = new Set<number>();
    const started = Date.now();
    const producer = async (home: number) => {
      let node = home;
      let nextRequestAtMs = Date.now();
      while (Date.now() - started < LOAD_MS) {
        const waitMs = nextRequestAtMs - Date.now();
        if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
        nextRequestAtMs = Math.max(nextRequestAtMs + REQUEST_INTERVAL_MS, Date.now());
        if (killed.has(node)) node = (node + 1) % 3;
        const entries = Array.from({ length: ENTRIES }, () => ({
          Source: "load",
          DetailType: "tick",
          Detail: JSON.stringify({ n: sequence++ }),
        }));
        try {
          const response = await fetch(`${nodes[node]!.url}/v1/events`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ Entries: entries }),
            signal: AbortSignal.timeout(15_000),
          });
          const body = (await response.json()) as { Entries?: { EventId?: string }[] };
          if (response.status !== 200) failedRequests += 1;
          else for (const entry of body.Entries ?? []) if (entry.EventId !== undefined) acked.add(entry.EventId);
        } catch {
          failedRequests += 1;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    let killedServer = "";
    const chaos = (async () => {
      await new Promise((r) => setTimeout(r, KILL_NODE_AT_MS));
      killed.add(1);
      await nodes[1]!.kill();
      await new Promise((r) => setTimeout(r, KILL_NATS_AT_MS - KILL_NODE_AT_MS));
      // The worst server to lose: the one leading the dispatch consumer (it tracks the claims).
      const leader = await dispatchConsumerLeader(cluster);
      const victim = cluster.servers.find((server) => server.name === leader) ?? cluster.servers[2]!;
      killedServer = victim.name;
      await victim.kill("SIGKILL");
    })();
    await Promise.all([producer(0), producer(1), producer(2), chaos]);
    t.diagnostic(`acked ${acked.size} events; ${failedRequests} requests failed or were refused during the faults; NATS server ${killedServer} killed`);
    assert.ok(acked.size >= 1_000, `a steady load: ${acked.size} events acked`);

    // Every acked event reaches the webhook; the dead node's claimed events go to the others
    // once their claims (5 s) run out. The requests are read once each as they come (the
    // receiver keeps them all; reading them all again every turn grew with their number).
    const counts = new Map<string, number>();
    let read = 0;
    const readDelivered = () => {
      const requests = receiver.requests;
      for (; read < requests.length; read++) {
        const request = requests[read]!;
        if (request.path !== "/load") continue;
        const id = (JSON.parse(request.body) as { id: string }).id;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    };
    const waitStartedMs = Date.now();
    let missing = [...acked];
    let progressAtMs = Date.now();
    const progress: string[] = [];
    while (missing.length > 0 && Date.now() - progressAtMs < NO_PROGRESS_MS) {
      await new Promise((r) => setTimeout(r, 250));
      readDelivered();
      const stillMissing = missing.filter((id) => !counts.has(id));
      if (stillMissing.length < missing.length) progressAtMs = Date.now();
      if (progress.length === 0 || Date.now() - waitStartedMs >= progress.length * 10_000) {
        progress.push(`${Math.round((Date.now() - waitStartedMs) / 1000)} s: ${stillMissing.length} missing`);
      }
      missing = stillMissing;
    }
    if (missing.length === 0) {
      t.diagnostic(`every acked event delivered ${Math.round((Date.now() - waitStartedMs) / 1000)} s after the load ended (${progress.join(", ")})`);
    } else {
      t.diagnostic(`delivery made no progress for ${NO_PROGRESS_MS / 1000} s: ${progress.join(", ")}`);
      // What the cluster still holds, and what the surviving nodes said: for the failure message.
      const nc = await connect({ servers: cluster.urls.slice(0, 2) });
      try {
        const jsm = await nc.jetstreamManager();
        const c = await jsm.consumers.info("FAILOVER_LOG_default", "dispatch");
        t.diagnostic(
          `dispatch consumer: pending ${c.num_pending}, unacknowledged ${c.num_ack_pending}, redelivered ${c.num_redelivered}, waiting pulls ${c.num_waiting}, ack floor ${c.ack_floor.stream_seq}`,
        );
      } finally {
        await nc.close();
      }
      for (const [i, node] of nodes.entries()) {
        if (i === 1) continue;
        const said = node.output().split("\n").filter((line) => / (warn|error) /.test(line)).slice(-15).join("\n");
        t.diagnostic(`node ${i + 1} warnings and errors:\n${said}`);
      }
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acked events never reached the webhook (no progress for ${NO_PROGRESS_MS / 1000} s)`);
    const duplicates = [...counts.values()].filter((n) => n > 1).length;
    const extraDeliveries = [...counts.values()].reduce((sum, n) => sum + n - 1, 0);
    // A stuck-consumer repair hands out again everything after the floor: most repeats, when one ran.
    const said = nodes.filter((_, i) => i !== 1).flatMap((node) => node.output().split("\n"));
    const repairs = said.filter((line) => line.includes("dispatch consumer is stuck"));
    for (const line of [...repairs, ...said.filter((line) => line.includes("a node still works on the event after it"))]) t.diagnostic(line);
    t.diagnostic(
      `delivered ${counts.size} distinct events (${acked.size} acked); ${duplicates} delivered more than once (${extraDeliveries} extra deliveries); ${repairs.length} stuck-consumer repairs`,
    );
    // Those repeats are the killed node's unfinished events, delivered again by the others.
    assert.ok(duplicates > 0, "the killed node's events in flight were taken over (delivered again)");

    // The log holds each event once (publish deduplication), and a surviving node's usage
    // counts exactly the events of the log.
    const nc = await connect({ servers: cluster.urls.slice(0, 2) });
    let logged: number;
    try {
      const jsm = await nc.jetstreamManager();
      logged = (await jsm.streams.info("FAILOVER_LOG_default")).state.messages;
    } finally {
      await nc.close();
    }
    assert.ok(logged >= acked.size, `the log holds every acked event (${logged} ≥ ${acked.size})`);
    const survivor = nodes[0]!;
    let published = -1;
    const usageDeadline = Date.now() + 30_000;
    while (published !== logged && Date.now() < usageDeadline) {
      const response = await fetch(`${survivor.url}/v1/usage?groupBy=bus,meter`);
      assert.equal(response.status, 200);
      const report = (await response.json()) as { totals: { meter: string; quantity: number }[] };
      published = report.totals.find((total) => total.meter === "publish")?.quantity ?? 0;
      if (published !== logged) await new Promise((r) => setTimeout(r, 250));
    }
    t.diagnostic(`log holds ${logged} events; node 1's publish usage counts ${published}`);
    assert.equal(published, logged, "publish usage equals the events in the log");
  },
);

/** The name of the NATS server leading the `dispatch` consumer of the default bus. */
async function dispatchConsumerLeader(cluster: NatsCluster): Promise<string | undefined> {
  const nc = await connect({ servers: cluster.urls });
  try {
    const jsm = await nc.jetstreamManager();
    return (await jsm.consumers.info("FAILOVER_LOG_default", "dispatch")).cluster?.leader;
  } catch {
    return undefined;
  } finally {
    await nc.close();
  }
}
