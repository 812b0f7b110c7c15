/**
 * Ingest benchmark: durable events/s and answer times of a real Relaybus process.
 *
 *     npm run bench:ingest [-- --duration 10 --connections 64 --durability fsync --client wrk --only "1 entry" --auth]
 *
 * `--auth` turns API keys on: it creates an admin key (the loopback bootstrap), then a key
 * scoped to `publish:default` that every request sends as `Authorization: Bearer`.
 *
 * Starts `relaybus serve` (from the sources) on a free port with an empty data dir, then
 * drives it over keep-alive connections: single-event PutEvents, 10-entry
 * PutEvents, and single CloudEvents in structured mode, once with one fixed id and once with a
 * fresh random (v4) id per request, as producers choose their own (the log's id index pays
 * for random ids; PutEvents ids are time-ordered UUIDv7). Every answer is an ack after the
 * commit (durability `fsync`: SQLite synchronous=FULL), so requests/s × entries is durable
 * events/s.
 *
 * The load generator is wrk when it is installed (`apt-get install wrk`), else autocannon;
 * `--client wrk|autocannon` chooses. Client and server share this machine's two cores, and
 * autocannon, written in Node, takes about a third of one, so it measures the server lower.
 * The first line printed says which client ran.
 */
import autocannon from "autocannon";
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBenchServer } from "./bench-server.js";

const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    durability: { type: "string", default: "fsync" },
    engine: { type: "string", default: "sqlite" },
    client: { type: "string" },
    only: { type: "string" },
    auth: { type: "boolean", default: false },
  },
});
const client = flags.client ?? (spawnSync("wrk", ["--version"]).error === undefined ? "wrk" : "autocannon");
if (client !== "wrk" && client !== "autocannon") {
  console.error(`--client ${client}: use wrk or autocannon`);
  process.exit(2);
}
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

const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-"));
mkdirSync(join(dir, "rules"));
const server = await startBenchServer(dir, { RELAYBUS_DURABILITY: flags.durability });
const port = server.port;
/** `Authorization` of every request with `--auth`; empty without. */
const authHeaders: Record<string, string> = {};
try {
  if (flags.auth === true) authHeaders.authorization = `Bearer ${await createPublishKey()}`;
  console.log(`relaybus ingest benchmark: ${client}, ${connections} keep-alive connections, ${durationS} s per scenario, durability ${flags.durability}, ~1 KB events${flags.auth === true ? ", auth on (a publish:default key)" : ""}\n`);
  console.log("| scenario | requests/s | durable events/s | p50 ms | p99 ms | errors |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  // --only runs the scenarios whose name contains the text (for comparing one path over runs).
  for (const scenario of scenarios.filter((x) => flags.only === undefined || x.name.includes(flags.only))) {
    // A short warm-up lets the JIT settle before measuring.
    await run(scenario, 2);
    const result = await run(scenario, durationS);
    console.log(
      `| ${scenario.name} | ${Math.round(result.okPerSecond).toLocaleString("en")} | ${Math.round(result.okPerSecond * scenario.entries).toLocaleString("en")} | ${result.p50Ms} | ${result.p99Ms} | ${result.errors} |`,
    );
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

/** Creates the first (admin) key, then a `publish:default` key with it; returns the latter's token. */
async function createPublishKey(): Promise<string> {
  const create = async (body: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/keys`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    if (response.status !== 201) throw new Error(`POST /v1/keys: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { token: string }).token;
  };
  const admin = await create({ name: "bench-admin", scopes: ["admin"] });
  return create({ name: "bench-publisher", scopes: ["publish:default"] }, { authorization: `Bearer ${admin}` });
}

interface RunResult {
  /** 2xx answers per second. */
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers, socket errors and timeouts. */
  errors: number;
}

function run(scenario: (typeof scenarios)[number], seconds: number): Promise<RunResult> {
  return client === "wrk" ? runWrk(scenario, seconds) : runAutocannon(scenario, seconds);
}

async function runAutocannon(scenario: (typeof scenarios)[number], seconds: number): Promise<RunResult> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${scenario.path}`,
    method: "POST",
    headers: { "content-type": scenario.contentType, ...authHeaders },
    body: scenario.body,
    // A fresh v4 id per request: a prefix swap, so the client's cost stays small.
    ...("randomIds" in scenario
      ? { setupRequest: (request: autocannon.Request) => ({ ...request, body: scenario.body.replace('"bench-1"', `"${randomUUID()}"`) }) }
      : {}),
    connections,
    pipelining: 1,
    duration: seconds,
  });
  return {
    okPerSecond: result["2xx"] / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

/** Runs wrk with a Lua script for the method, body and content type, and parses its report. */
async function runWrk(scenario: (typeof scenarios)[number], seconds: number): Promise<RunResult> {
  const script = join(dir, "wrk.lua");
  const lines = [`wrk.method = "POST"`, `wrk.headers["Content-Type"] = "${scenario.contentType}"`];
  for (const [name, value] of Object.entries(authHeaders)) lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  if ("randomIds" in scenario) {
    // A fresh random (v4-shaped) id per request, as the autocannon path does.
    lines.push(
      `local template = ${luaString(scenario.body.replace('"bench-1"', '"RANDOM_ID"'))}`,
      `request = function()`,
      `  local id = string.format("%08x-%04x-4%03x-%04x-%06x%06x", math.random(0, 0x7fffffff), math.random(0, 0xffff), math.random(0, 0xfff), math.random(0x8000, 0xbfff), math.random(0, 0xffffff), math.random(0, 0xffffff))`,
      `  return wrk.format(nil, nil, nil, (template:gsub("RANDOM_ID", id)))`,
      `end`,
    );
  } else {
    lines.push(`wrk.body = ${luaString(scenario.body)}`);
  }
  writeFileSync(script, `${lines.join("\n")}\n`);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn("wrk", ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", script, `http://127.0.0.1:${port}${scenario.path}`]);
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}:\n${text}`))));
  });
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return {
    okPerSecond: (requests - non2xx) / seconds,
    p50Ms: wrkLatencyMs(output, "50%"),
    p99Ms: wrkLatencyMs(output, "99%"),
    errors: non2xx + socketErrors,
  };
}

/** A percentile from wrk's "Latency Distribution" block, in ms. */
function wrkLatencyMs(output: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(output);
  if (match === null) return Number.NaN;
  const factor = match[2] === "us" ? 0.001 : match[2] === "s" ? 1000 : 1;
  return Math.round(Number(match[1]) * factor * 100) / 100;
}

/** A Lua string literal holding `text`. */
function luaString(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`;
}
