/**
 * Ingest benchmark: durable events/s and answer times of a real Relaybus process.
 *
 *     npm run bench:ingest [-- --duration 10 --connections 64 --durability fsync --client wrk --only "1 entry" --auth --baseline]
 *     npm run bench:ingest -- --engine jetstream [--nats-servers nats://127.0.0.1:4222 --nodes 1,2]
 *
 * `--auth` turns API keys on: it creates an admin key (the loopback bootstrap), then a key
 * scoped to `publish:default` that every request sends as `Authorization: Bearer`.
 *
 * Starts `relaybus serve` (compiled, as `npm run bench:*` runs; see bench-modules.ts) on a
 * free port with an empty data dir, then drives it over keep-alive connections: single-event
 * PutEvents, 10-entry PutEvents, and single CloudEvents in structured mode, once with one
 * fixed id and once with a fresh random (v4) id per request, as producers choose their own
 * (the log's id index pays for random ids; PutEvents ids are time-ordered UUIDv7). Every
 * answer is an ack after the commit (durability `fsync`: SQLite synchronous=FULL), so
 * requests/s × entries is durable events/s.
 *
 * `--baseline` then runs the same scenarios against a bare node:http server that parses each
 * body and answers a fixed JSON (`bare-http-server.mjs`), and prints Relaybus's requests/s as
 * a share of its: how fast the machine is, so that runs on different machines (or hours of
 * one virtual machine) compare.
 *
 * `--engine jetstream` runs the same load against 1, then 2 nodes sharing one JetStream log
 * instead; see `ingest-jetstream.ts`.
 *
 * The load generator is wrk when it is installed (`apt-get install wrk`), else autocannon;
 * `--client wrk|autocannon` chooses. Client and server share this machine's two cores, and
 * autocannon, written in Node, takes about a third of one, so it measures the server lower.
 * The first line printed says which client ran.
 */
import { existsSync, mkdtempSync, mkdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBareHttpServer, startBenchServer } from "./bench-server.js";
import { runJetStreamIngest } from "./ingest-jetstream.js";
import {
  createPublishKey,
  defaultLoadClient,
  LOAD_CLIENTS,
  runScenario,
  SCENARIOS,
  type LoadClient,
  type LoadTarget,
  type RunOptions,
  type RunResult,
  type Scenario,
} from "./ingest-load.js";

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    durability: { type: "string", default: "fsync" },
    engine: { type: "string", default: "sqlite" },
    "nats-servers": { type: "string", default: "nats://127.0.0.1:4222" },
    nodes: { type: "string", default: "1,2" },
    client: { type: "string" },
    only: { type: "string" },
    auth: { type: "boolean", default: false },
    baseline: { type: "boolean", default: false },
  },
});
const client = flags.client ?? defaultLoadClient();
if (!LOAD_CLIENTS.includes(client as LoadClient)) {
  console.error(`--client ${client}: use wrk or autocannon`);
  process.exit(2);
}
const durationS = Number(flags.duration);
const connections = Number(flags.connections);
// --only runs the scenarios whose name contains the text (for comparing one path over runs).
const scenarios = SCENARIOS.filter((x) => flags.only === undefined || x.name.includes(flags.only));

if (flags.engine === "jetstream") {
  if (flags.baseline) {
    // The yardstick is one process on this machine; against nodes sharing NATS it would mislead.
    console.error("--baseline runs with the sqlite engine only");
    process.exit(2);
  }
  const nodeCounts = flags.nodes.split(",").map(Number);
  if (nodeCounts.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error(`--nodes ${flags.nodes}: a comma-separated list of node counts, such as 1,2`);
    process.exit(2);
  }
  await runJetStreamIngest({
    client: client as LoadClient,
    connections,
    seconds: durationS,
    scenarios,
    natsServers: flags["nats-servers"],
    nodeCounts,
    auth: flags.auth,
  });
} else if (flags.engine === "sqlite") {
  await runSqliteIngest();
} else {
  console.error(`--engine ${flags.engine}: use sqlite or jetstream`);
  process.exit(2);
}

async function runSqliteIngest(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-"));
  mkdirSync(join(dir, "rules"));
  const server = await startBenchServer(dir, { RELAYBUS_DURABILITY: flags.durability });
  try {
    const target: LoadTarget = { url: server.url, headers: {} };
    if (flags.auth) target.headers.authorization = `Bearer ${await createPublishKey(server.url)}`;
    const options = { client: client as LoadClient, connections, scratchDir: dir };
    console.log(
      `relaybus ingest benchmark: ${client}, ${connections} keep-alive connections, ${durationS} s per scenario, durability ${flags.durability}, ~1 KB events${flags.auth ? ", auth on (a publish:default key)" : ""}\n`,
    );
    // The log's WAL, sampled through the run: it must start again from its beginning under
    // nonstop load (see log-writer-worker.ts), not grow with every commit.
    const walFile = join(dir, "data", "relaybus.db-wal");
    let largestWal = 0;
    const walSampler = setInterval(() => {
      if (existsSync(walFile)) largestWal = Math.max(largestWal, statSync(walFile).size);
    }, 100);
    walSampler.unref();
    console.log("| scenario | requests/s | durable events/s | p50 ms | p99 ms | errors |");
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    const relaybusResults: RunResult[] = [];
    for (const scenario of scenarios) {
      const result = await warmedRun(scenario, target, options);
      relaybusResults.push(result);
      console.log(
        `| ${scenario.name} | ${Math.round(result.okPerSecond).toLocaleString("en")} | ${Math.round(result.okPerSecond * scenario.entries).toLocaleString("en")} | ${result.p50Ms} | ${result.p99Ms} | ${result.errors} |`,
      );
    }
    clearInterval(walSampler);
    console.log(`\nthe log's WAL file at its largest: ${(largestWal / 1_048_576).toFixed(0)} MB`);
    await server.stop(); // before the baseline, which must have the cores to itself
    if (flags.baseline) await runBaseline(relaybusResults, options);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One measured run of the scenario after a short warm-up that lets the JIT settle. */
async function warmedRun(
  scenario: Scenario,
  target: LoadTarget,
  options: Omit<RunOptions, "seconds">,
): Promise<RunResult> {
  await runScenario(scenario, [target], { ...options, seconds: 2 });
  return await runScenario(scenario, [target], { ...options, seconds: durationS });
}

/** The same scenarios against the bare node:http server, after Relaybus has stopped. */
async function runBaseline(
  relaybusResults: readonly RunResult[],
  options: Omit<RunOptions, "seconds">,
): Promise<void> {
  const bare = await startBareHttpServer();
  try {
    console.log(
      `\nthe same load against a bare node:http server that parses each body and answers a fixed JSON (bench/bare-http-server.mjs):\n`,
    );
    console.log("| scenario | bare requests/s | p50 ms | p99 ms | errors | Relaybus / bare |");
    console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const [i, scenario] of scenarios.entries()) {
      const result = await warmedRun(scenario, { url: bare.url, headers: {} }, options);
      const share = relaybusResults[i]!.okPerSecond / result.okPerSecond;
      console.log(
        `| ${scenario.name} | ${Math.round(result.okPerSecond).toLocaleString("en")} | ${result.p50Ms} | ${result.p99Ms} | ${result.errors} | ${(100 * share).toFixed(0)}% |`,
      );
    }
  } finally {
    await bare.stop();
  }
}
