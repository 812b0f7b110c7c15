/**
 * The ingest benchmark on the JetStream log (`npm run bench:ingest -- --engine jetstream`):
 * for each node count of `--nodes` (default 1,2), that many `relaybus serve` processes, each
 * with its own data dir and port, share one JetStream log on `--nats-servers`; the scenarios
 * of `ingest-load.ts` run against all of them at once, the connections split between them.
 *
 * Each node count gets its own stream prefix (`BENCH<random>`), so runs never see each
 * other's streams; its streams are deleted when it ends.
 *
 * Durability is checked, not assumed: after each scenario the default bus's stream
 * (`<PREFIX>_LOG_default`) must have gained at least as many events as the client counted
 * 2xx answers × entries (warm-up included). More is fine (requests in flight when the client
 * stopped are stored but not counted); fewer means acknowledged events are missing, and the
 * benchmark exits 1. A 200 PutEvents answer may still report failed entries, which the
 * clients cannot see; such entries would show as missing here.
 */
import { connect, type JetStreamManager } from "nats";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { jetStreamNames } from "../src/log/jetstream/jetstream-names.js";
import { isNatsNotFound } from "../src/log/jetstream/nats-errors.js";
import { startBenchServer, type BenchServer } from "./bench-server.js";
import {
  createPublishKey,
  runScenario,
  type LoadClient,
  type LoadTarget,
  type Scenario,
} from "./ingest-load.js";

/** The warm-up before each measured run, in seconds. */
const WARM_UP_S = 2;
/** How long to wait for the stream's count to stop moving after a run. */
const SETTLE_TIMEOUT_MS = 10_000;

export interface JetStreamIngestOptions {
  client: LoadClient;
  /** Keep-alive connections in all, split between the nodes. */
  connections: number;
  seconds: number;
  scenarios: readonly Scenario[];
  /** Comma-separated NATS URLs, for the nodes and for the benchmark's own checks. */
  natsServers: string;
  /** A run per count, in order. */
  nodeCounts: readonly number[];
  auth: boolean;
}

export async function runJetStreamIngest(options: JetStreamIngestOptions): Promise<void> {
  const nc = await connect({ servers: options.natsServers.split(",") });
  try {
    const jsm = await nc.jetstreamManager();
    const replicas = process.env["RELAYBUS_JETSTREAM_REPLICAS"] ?? "1";
    // JetStream stores an id once per duplicate window: one fixed id measures deduplication.
    const scenarios = options.scenarios.filter((s) => s.oneId !== true);
    const skipped = options.scenarios.filter((s) => s.oneId === true);
    console.log(
      `relaybus ingest benchmark: engine jetstream (${options.natsServers}, replicas ${replicas}), ${options.client}, ${options.connections} keep-alive connections split evenly over the nodes, ${options.seconds} s per scenario, ~1 KB events${options.auth ? ", auth on (a publish:default key per node)" : ""}`,
    );
    console.log(
      `The nodes, NATS and the load client all share this machine's ${availableParallelism()} cores. With several nodes, one client per node runs at once: requests/s and errors are summed, p50 and p99 are the slowest node's.\n`,
    );
    console.log(
      "| engine | nodes | scenario | requests/s | durable events/s | p50 ms | p99 ms | errors | events in stream ≥ acked |",
    );
    console.log("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |");
    let missing = false;
    for (const nodes of options.nodeCounts) {
      if (!(await runNodes(nodes, scenarios, options, jsm))) missing = true;
    }
    console.log(
      `\nAn answer is an ack after JetStream's PubAck. "events in stream ≥ acked": events the bus's stream gained during the scenario (warm-up included) against 2xx answers × entries counted by the client.`,
    );
    for (const s of skipped)
      console.log(
        `Left out: "${s.name}" (one fixed id): JetStream stores an id once per duplicate window, so it would measure deduplication, not ingest.`,
      );
    if (missing) {
      console.log("FAILED: a stream holds fewer events than were acknowledged.");
      process.exitCode = 1;
    }
  } finally {
    await nc.close();
  }
}

/** One run with `count` nodes; false when acknowledged events are missing from the stream. */
async function runNodes(
  count: number,
  scenarios: readonly Scenario[],
  options: JetStreamIngestOptions,
  jsm: JetStreamManager,
): Promise<boolean> {
  const prefix = `BENCH${randomBytes(4).toString("hex").toUpperCase()}`;
  const stream = jetStreamNames(prefix).logStream("default");
  const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-js-"));
  const config = join(dir, "relaybus.yaml");
  writeFileSync(config, `log:\n  jetstream:\n    streamPrefix: ${prefix}\n`);
  const env = {
    RELAYBUS_LOG_ENGINE: "jetstream",
    RELAYBUS_NATS_SERVERS: options.natsServers,
    RELAYBUS_CONFIG: config,
  };
  const servers: BenchServer[] = [];
  let allStored = true;
  try {
    for (let i = 1; i <= count; i++) {
      const nodeDir = join(dir, `node-${i}`);
      mkdirSync(join(nodeDir, "rules"), { recursive: true });
      servers.push(await startBenchServer(nodeDir, env));
    }
    const targets: LoadTarget[] = [];
    for (const server of servers) {
      const headers: Record<string, string> = {};
      if (options.auth) headers.authorization = `Bearer ${await createPublishKey(server.url)}`;
      targets.push({ url: server.url, headers });
    }
    const runOptions = {
      client: options.client,
      connections: options.connections,
      scratchDir: dir,
    };
    for (const scenario of scenarios) {
      const before = await settledCount(jsm, stream);
      // A short warm-up lets the JIT settle before measuring.
      const warmUp = await runScenario(scenario, targets, { ...runOptions, seconds: WARM_UP_S });
      const result = await runScenario(scenario, targets, {
        ...runOptions,
        seconds: options.seconds,
      });
      const stored = (await settledCount(jsm, stream)) - before;
      const acked = (warmUp.ok + result.ok) * scenario.entries;
      if (stored < acked) allStored = false;
      const check = `${stored.toLocaleString("en")} ${stored >= acked ? "≥" : "< (MISSING)"} ${acked.toLocaleString("en")}`;
      console.log(
        `| jetstream | ${count} | ${scenario.name} | ${Math.round(result.okPerSecond).toLocaleString("en")} | ${Math.round(result.okPerSecond * scenario.entries).toLocaleString("en")} | ${result.p50Ms} | ${result.p99Ms} | ${result.errors} | ${check} |`,
      );
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    await deleteStreams(jsm, prefix);
    rmSync(dir, { recursive: true, force: true });
  }
  return allStored;
}

/** Messages in the stream once the count stops moving (0 while it does not exist). */
async function settledCount(jsm: JetStreamManager, stream: string): Promise<number> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let last = await count(jsm, stream);
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await count(jsm, stream);
    if (now === last || Date.now() > deadline) return now;
    last = now;
  }
}

async function count(jsm: JetStreamManager, stream: string): Promise<number> {
  try {
    return (await jsm.streams.info(stream)).state.messages;
  } catch (error) {
    if (isNatsNotFound(error)) return 0;
    throw error;
  }
}

/** Deletes every stream and bucket of `<prefix>` (`<prefix>_...`, `KV_<prefix>_...`): what the nodes made. */
async function deleteStreams(jsm: JetStreamManager, prefix: string): Promise<void> {
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`${prefix}_`) || name.startsWith(`KV_${prefix}_`)) await jsm.streams.delete(name);
  }
}
