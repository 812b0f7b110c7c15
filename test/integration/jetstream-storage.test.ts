/**
 * The JetStream storage's start and close against real NATS: it opens on a three-server
 * cluster started a moment ago, before the cluster has elected its leaders (its set-up
 * requests are asked again while they time out), and closing it lets go of everything it
 * started at once, timers included.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { findNatsServerBinary, startNatsCluster } from "../../src/cli/nats-cluster.js";
import { DEFAULT_CONFIG, type JetStreamLogConfig } from "../../src/config/defaults.js";
import { measureEvent } from "../../src/events/sizing.js";
import { jetStreamNames, openJetStreamStorage, type JetStreamStorage } from "../../src/log/jetstream/index.js";
import { requireService } from "../helpers/local-services.js";
import { assertNothingOpenWithin } from "../helpers/open-handles.js";
import { freePort } from "../helpers/relaybus-process.js";
import { deleteTestStreams, TEST_NATS_URL, testStreamPrefix } from "../helpers/test-engine.js";

const natsMissing = await requireService("nats");
const noNatsServer = findNatsServerBinary() === undefined ? "no nats-server on PATH nor at /usr/sbin/nats-server" : false;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-jetstream-storage-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(dir: string, jetstream: Partial<JetStreamLogConfig>): Promise<JetStreamStorage> {
  return openJetStreamStorage({ dataDir: join(dir, "data"), jetstream: { ...DEFAULT_CONFIG.log.jetstream, ...jetstream } });
}

/** Appends one event to `orders` and reads it back. */
async function appendAndRead(storage: JetStreamStorage): Promise<void> {
  const event = { specversion: "1.0", id: "evt-1", source: "shop", type: "created", data: { n: 1 } } as const;
  const [stored] = await storage.log.append([measureEvent("orders", event)]);
  assert.equal(stored?.offset, 1);
  const read = await storage.log.read("orders", 0, 10);
  assert.deepEqual(read.map((e) => e.event.id), ["evt-1"]);
}

test("jetstream storage - closing lets go of everything it started: nothing is left open a second later", { skip: natsMissing }, async (t) => {
  const dir = tempDir(t);
  const streamPrefix = testStreamPrefix(dir);
  t.after(() => deleteTestStreams(streamPrefix));
  const storage = await open(dir, { servers: [TEST_NATS_URL], streamPrefix });
  await appendAndRead(storage);
  await storage.close();
  // Less than the 2 s the shared state's close may wait for its last changes: its bound's
  // timer once outlived the close, and a test's open-handle check could see it under load.
  await assertNothingOpenWithin(1_000);
});

test("jetstream storage - opens on a three-server cluster started just now, asking again until it has elected its leaders", { skip: noNatsServer }, async (t) => {
  const dir = tempDir(t);
  const ports = new Set<number>();
  while (ports.size < 6) ports.add(await freePort());
  const [n1, n2, n3, r1, r2, r3] = [...ports] as [number, number, number, number, number, number];
  const cluster = await startNatsCluster({ clientPorts: [n1, n2, n3], clusterPorts: [r1, r2, r3], dir: join(dir, "nats") });
  t.after(() => cluster.stop());
  // At once, with no wait for JetStream: a request sent before a meta leader exists goes
  // unanswered until its timeout, and the streams made next are elected their own leaders.
  const storage = await open(dir, { servers: cluster.urls, replicas: 3, streamPrefix: "FRESH" });
  try {
    await appendAndRead(storage);
    // The last step made its stream on three servers too.
    const jsm = await storage.connection.jetstreamManager();
    assert.equal((await jsm.streams.info(jetStreamNames("FRESH").parkedStream)).config.num_replicas, 3);
  } finally {
    await storage.close();
  }
});
