/**
 * Ingest benchmark: durable events/s and answer times of a real Relaybus process.
 *
 *     npm run bench:ingest [-- --duration 10 --connections 64 --durability fsync]
 *
 * Starts `relaybus serve` (from the sources) on a free port with an empty data dir, then
 * drives it with autocannon over keep-alive connections: single-event PutEvents, 10-entry
 * PutEvents, and single CloudEvents in structured mode, once with one fixed id and once with a
 * fresh random (v4) id per request, as producers choose their own (the log's id index pays
 * for random ids; PutEvents ids are time-ordered UUIDv7). Every answer is an ack after the
 * commit (durability `fsync`: SQLite synchronous=FULL), so requests/s × entries is durable
 * events/s. Client and server share this machine's cores.
 */
import autocannon from "autocannon";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    durability: { type: "string", default: "fsync" },
    engine: { type: "string", default: "sqlite" },
  },
});
if (flags.engine !== "sqlite") {
  console.error(`--engine ${flags.engine}: only sqlite exists so far`);
  process.exit(2);
}
const durationS = Number(flags.duration);
const connections = Number(flags.connections);

const detail = JSON.stringify({ orderId: "o-12345", customer: "c-678", total: 129.5, items: [{ sku: "a1", qty: 2 }, { sku: "b2", qty: 1 }], note: "x".repeat(700) });
const entry = { Source: "bench.orders", DetailType: "order.created", Detail: detail };
const scenarios = [
  { name: "PutEvents, 1 entry", path: "/v1/events", contentType: "application/json", body: JSON.stringify({ Entries: [entry] }), entries: 1 },
  { name: "PutEvents, 10 entries", path: "/v1/events", contentType: "application/json", body: JSON.stringify({ Entries: Array(10).fill(entry) }), entries: 10 },
  {
    name: "CloudEvent, structured",
    path: "/v1/buses/default/cloudevents",
    contentType: "application/cloudevents+json",
    body: JSON.stringify({ specversion: "1.0", id: "bench-1", source: "bench.orders", type: "order.created", data: JSON.parse(detail) }),
    entries: 1,
  },
  {
    name: "CloudEvent, structured, random ids",
    path: "/v1/buses/default/cloudevents",
    contentType: "application/cloudevents+json",
    body: JSON.stringify({ specversion: "1.0", id: "bench-1", source: "bench.orders", type: "order.created", data: JSON.parse(detail) }),
    entries: 1,
    randomIds: true,
  },
];

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-"));
mkdirSync(join(dir, "rules"));
const server = spawn(
  process.execPath,
  ["--import", "tsx", new URL("../src/cli/run.ts", import.meta.url).pathname, "serve", "--port", String(port), "--data-dir", join(dir, "data"), "--rules-dir", join(dir, "rules")],
  { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, RELAYBUS_DURABILITY: flags.durability } },
);
try {
  await waitForHealth(`http://127.0.0.1:${port}/healthz`);
  console.log(`relaybus ingest benchmark: ${connections} keep-alive connections, ${durationS} s per scenario, durability ${flags.durability}, ~1 KB events\n`);
  console.log("| scenario | requests/s | durable events/s | p50 ms | p99 ms | errors |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const scenario of scenarios) {
    // A short warm-up lets the JIT settle before measuring.
    await run(scenario, 2);
    const result = await run(scenario, durationS);
    const ok = result["2xx"];
    const rps = ok / durationS;
    const errors = result.non2xx + result.errors + result.timeouts;
    console.log(
      `| ${scenario.name} | ${Math.round(rps).toLocaleString("en")} | ${Math.round(rps * scenario.entries).toLocaleString("en")} | ${result.latency.p50} | ${result.latency.p99} | ${errors} |`,
    );
  }
} finally {
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}

function run(scenario: (typeof scenarios)[number], seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `http://127.0.0.1:${port}${scenario.path}`,
    method: "POST",
    headers: { "content-type": scenario.contentType },
    body: scenario.body,
    // A fresh v4 id per request: a prefix swap, so the client's cost stays small.
    ...("randomIds" in scenario
      ? { setupRequest: (request: autocannon.Request) => ({ ...request, body: scenario.body.replace('"bench-1"', `"${randomUUID()}"`) }) }
      : {}),
    connections,
    pipelining: 1,
    duration: seconds,
  });
}

async function waitForHealth(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("relaybus did not start");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      s.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}
