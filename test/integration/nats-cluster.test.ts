/**
 * The local JetStream cluster launcher (src/cli/nats-cluster.ts) with real nats-server
 * processes on free loopback ports: an R3 stream keeps acking publishes after its leader is
 * SIGKILLed (quorum 2 of 3), the restarted server catches up, and stop leaves no process.
 * A start that fails kills what it started; waitForJetStream gives up without a quorum.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { connect, StorageType, type JetStreamClient, type PubAck } from "nats";
import {
  findNatsServerBinary,
  startNatsCluster,
  type NatsCluster,
} from "../../src/cli/nats-cluster.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { freePort } from "../helpers/relaybus-process.js";

const skip =
  findNatsServerBinary() === undefined
    ? "no nats-server on PATH nor at /usr/sbin/nats-server"
    : false;
const STREAM = "CLUSTER_TEST";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** True once nothing has the pid any more (signal 0 probes without sending). */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A cluster of `size` on free ports in a temp dir, stopped and removed after the test. */
async function startTestCluster(t: TestContext, size = 3): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-nats-cluster-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [clientPorts, clusterPorts] = [await freePorts(size), await freePorts(size)];
  const cluster = await startNatsCluster({ size, clientPorts, clusterPorts, dir });
  t.after(() => cluster.stop());
  return cluster;
}

/**
 * Publishes `cluster.test.<i>` for i in [from, to), each with a Nats-Msg-Id, so a retry after
 * a lost ack (while a new leader is elected) is stored once. Retries each for up to 20 s.
 */
async function publishRange(js: JetStreamClient, from: number, to: number): Promise<PubAck[]> {
  const acks: PubAck[] = [];
  for (let i = from; i < to; i += 1) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        acks.push(
          await js.publish(`cluster.test.${i}`, JSON.stringify({ i }), {
            msgID: `m-${i}`,
            timeout: 2_000,
          }),
        );
        break;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`message ${i} got no PubAck within 20 s`, { cause: error });
        await sleep(200);
      }
    }
  }
  return acks;
}

test(
  "nats cluster - an R3 stream acks publishes with its leader SIGKILLed, the restarted server catches up, stop leaves no process",
  { skip },
  async (t) => {
    const cluster = await startTestCluster(t);
    assert.equal(cluster.servers.length, 3);
    assert.deepEqual(
      cluster.servers.map((s) => s.name),
      ["n1", "n2", "n3"],
    );
    const pids = cluster.servers.map((s) => s.pid());
    assert.ok(
      pids.every((pid) => typeof pid === "number"),
      `every server has a pid: ${pids.join(",")}`,
    );
    assert.equal(new Set(pids).size, 3);
    await cluster.waitForJetStream(30_000);

    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, timeout: 5_000 });
    t.after(() => nc.close());
    const jsm = await nc.jetstreamManager({ timeout: 5_000 });
    const js = nc.jetstream({ timeout: 5_000 });
    await jsm.streams.add({
      name: STREAM,
      subjects: ["cluster.test.>"],
      num_replicas: 3,
      storage: StorageType.File,
    });

    const firstAcks = await publishRange(js, 0, 100);
    assert.deepEqual(
      firstAcks.map((ack) => ack.seq),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );

    // Kill the stream's leader: the harder case, the other two must elect a new one.
    const before = await jsm.streams.info(STREAM);
    assert.equal(before.config.num_replicas, 3);
    assert.equal(before.cluster?.replicas?.length, 2, "a leader and two followers");
    const leaderName = before.cluster?.leader;
    const victim = cluster.servers.find((s) => s.name === leaderName);
    assert.ok(victim !== undefined, `the stream leader ${leaderName} is one of ours`);
    const victimPid = victim.pid() as number;
    await victim.kill();
    assert.equal(victim.running(), false);
    assert.equal(victim.pid(), undefined);
    assert.ok(processGone(victimPid), `the killed server's process ${victimPid} is gone`);

    const secondAcks = await publishRange(js, 100, 200);
    assert.equal(secondAcks.length, 100);
    assert.ok(secondAcks.every((ack) => ack.stream === STREAM));
    const during = await jsm.streams.info(STREAM);
    assert.notEqual(during.cluster?.leader, victim.name, "a surviving server leads the stream");
    assert.equal(during.state.messages, 200);

    await victim.start();
    assert.equal(victim.running(), true);
    const restartedPid = victim.pid() as number;
    assert.notEqual(restartedPid, victimPid);

    // The restarted server is back in the stream's replicas, current and without lag.
    const deadline = Date.now() + 20_000;
    let replica: { name: string; current: boolean; offline?: boolean; lag?: number } | undefined;
    for (;;) {
      const info = await jsm.streams.info(STREAM).catch(() => undefined);
      replica = info?.cluster?.replicas?.find((r) => r.name === victim.name);
      if (replica?.current === true && replica.offline !== true && (replica.lag ?? 0) === 0) break;
      if (Date.now() > deadline)
        assert.fail(`${victim.name} did not catch up within 20 s: ${JSON.stringify(replica)}`);
      await sleep(200);
    }
    const after = await jsm.streams.info(STREAM);
    assert.equal(after.state.messages, 200);
    assert.equal(after.state.first_seq, 1);
    assert.equal(after.state.last_seq, 200, "no message was stored twice");
    const last = await jsm.streams.getMessage(STREAM, { seq: 200 });
    assert.equal(last.subject, "cluster.test.199");

    await nc.close();
    await cluster.stop();
    assert.ok(cluster.servers.every((s) => !s.running()));
    for (const pid of [...pids, restartedPid])
      assert.ok(processGone(pid as number), `process ${pid} is gone`);
    await cluster.stop(); // a second stop is harmless
    await assertNothingOpen();
  },
);

test(
  "nats cluster - a server that cannot start fails the start, and the others are killed",
  { skip },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "relaybus-nats-cluster-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const [clientPorts, clusterPorts] = [await freePorts(3), await freePorts(3)];
    // Something else holds n3's client port.
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(clientPorts[2], "127.0.0.1", resolve));
    t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));

    await assert.rejects(
      startNatsCluster({ clientPorts, clusterPorts, dir }),
      /NATS server n3 exited while starting[\s\S]*address already in use/,
    );
    for (const port of [clientPorts[0], clientPorts[1], ...clusterPorts] as number[]) {
      assert.ok(await portIsFree(port), `port ${port} is free again: its server was killed`);
    }
  },
);

test(
  "nats cluster - waitForJetStream rejects after its timeout when only one of three servers runs",
  { skip },
  async (t) => {
    const cluster = await startTestCluster(t);
    await cluster.servers[1]?.kill();
    await cluster.servers[2]?.kill();
    const startedAt = Date.now();
    await assert.rejects(
      cluster.waitForJetStream(2_000),
      /JetStream could not place a stream with 3 replicas within 2000 ms/,
    );
    assert.ok(Date.now() - startedAt < 6_000, "it gives up close to its timeout");
  },
);
