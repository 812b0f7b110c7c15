/**
 * The load side of the ingest benchmark (`ingest.ts`): its scenarios, and one run of a
 * scenario against one or more Relaybus servers with wrk or autocannon.
 *
 * Against several servers the connections are split between them and one client runs per
 * server, all at once; their counts are summed, and the latency percentiles are the slowest
 * server's (percentiles of separate runs cannot be merged exactly).
 */
import autocannon from "autocannon";
import { spawn, spawnSync } from "node:child_process";
import { randomInt, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export const LOAD_CLIENTS = ["wrk", "autocannon"] as const;
export type LoadClient = (typeof LOAD_CLIENTS)[number];

/** wrk when it is installed, else autocannon. */
export function defaultLoadClient(): LoadClient {
  return spawnSync("wrk", ["--version"]).error === undefined ? "wrk" : "autocannon";
}

const detail = JSON.stringify({
  orderId: "o-12345",
  customer: "c-678",
  total: 129.5,
  items: [
    { sku: "a1", qty: 2 },
    { sku: "b2", qty: 1 },
  ],
  note: "x".repeat(700),
});
const entry = { Source: "bench.orders", DetailType: "order.created", Detail: detail };
const cloudEvent = JSON.stringify({
  specversion: "1.0",
  id: "bench-1",
  source: "bench.orders",
  type: "order.created",
  data: JSON.parse(detail),
});

export interface Scenario {
  name: string;
  path: string;
  contentType: string;
  body: string;
  /** Events per request. */
  entries: number;
  /** A fresh random (v4) id per request in place of `bench-1`. */
  randomIds?: boolean;
  /** Every request carries the same event id (`bench-1`). */
  oneId?: boolean;
}

/** ~1 KB events; PutEvents ids are the server's (UUIDv7), CloudEvents carry the producer's. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: "PutEvents, 1 entry",
    path: "/v1/events",
    contentType: "application/json",
    body: JSON.stringify({ Entries: [entry] }),
    entries: 1,
  },
  {
    name: "PutEvents, 10 entries",
    path: "/v1/events",
    contentType: "application/json",
    body: JSON.stringify({ Entries: Array(10).fill(entry) }),
    entries: 10,
  },
  {
    name: "CloudEvent, structured",
    path: "/v1/buses/default/cloudevents",
    contentType: "application/cloudevents+json",
    body: cloudEvent,
    entries: 1,
    oneId: true,
  },
  {
    name: "CloudEvent, structured, random ids",
    path: "/v1/buses/default/cloudevents",
    contentType: "application/cloudevents+json",
    body: cloudEvent,
    entries: 1,
    randomIds: true,
  },
];

/** One server to load: its base URL and the headers every request sends (auth). */
export interface LoadTarget {
  url: string;
  headers: Record<string, string>;
}

export interface RunResult {
  /** 2xx answers (wrk: 2xx and 3xx), in all. */
  ok: number;
  /** `ok` per second of the run. */
  okPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers, socket errors and timeouts. */
  errors: number;
}

export interface RunOptions {
  client: LoadClient;
  /** Keep-alive connections in all, split between the targets. */
  connections: number;
  seconds: number;
  /** Where wrk's Lua scripts are written. */
  scratchDir: string;
}

/** Runs the scenario against every target at once, `connections` split between them. */
export async function runScenario(
  scenario: Scenario,
  targets: readonly LoadTarget[],
  options: RunOptions,
): Promise<RunResult> {
  const results = await Promise.all(
    targets.map((target, i) => {
      const connections =
        Math.floor(options.connections / targets.length) +
        (i < options.connections % targets.length ? 1 : 0);
      return options.client === "wrk"
        ? runWrk(
            scenario,
            target,
            connections,
            options.seconds,
            join(options.scratchDir, `wrk-${i}.lua`),
          )
        : runAutocannon(scenario, target, connections, options.seconds);
    }),
  );
  return {
    ok: results.reduce((sum, r) => sum + r.ok, 0),
    okPerSecond: results.reduce((sum, r) => sum + r.okPerSecond, 0),
    p50Ms: Math.max(...results.map((r) => r.p50Ms)),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
  };
}

/** Creates the first (admin) key, then a `publish:default` key with it; returns the latter's token. */
export async function createPublishKey(url: string): Promise<string> {
  const create = async (body: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${url}/v1/keys`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    if (response.status !== 201)
      throw new Error(`POST /v1/keys: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { token: string }).token;
  };
  const admin = await create({ name: "bench-admin", scopes: ["admin"] });
  return create(
    { name: "bench-publisher", scopes: ["publish:default"] },
    { authorization: `Bearer ${admin}` },
  );
}

async function runAutocannon(
  scenario: Scenario,
  target: LoadTarget,
  connections: number,
  seconds: number,
): Promise<RunResult> {
  const result = await autocannon({
    url: `${target.url}${scenario.path}`,
    method: "POST",
    headers: { "content-type": scenario.contentType, ...target.headers },
    body: scenario.body,
    // A fresh v4 id per request: a prefix swap, so the client's cost stays small.
    ...(scenario.randomIds === true
      ? {
          setupRequest: (request: autocannon.Request) => ({
            ...request,
            body: scenario.body.replace('"bench-1"', `"${randomUUID()}"`),
          }),
        }
      : {}),
    connections,
    pipelining: 1,
    duration: seconds,
  });
  return {
    ok: result["2xx"],
    okPerSecond: result["2xx"] / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

/** Runs wrk with a Lua script for the method, body and content type, and parses its report. */
async function runWrk(
  scenario: Scenario,
  target: LoadTarget,
  connections: number,
  seconds: number,
  script: string,
): Promise<RunResult> {
  const lines = [`wrk.method = "POST"`, `wrk.headers["Content-Type"] = "${scenario.contentType}"`];
  for (const [name, value] of Object.entries(target.headers))
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  if (scenario.randomIds === true) {
    // A fresh random (v4-shaped) id per request, as the autocannon path does. Seeded anew
    // per wrk process: unseeded, every run (warm-up, measured, one per node) would send the
    // same ids, which a log deduplicating on the id (JetStream) stores once.
    lines.push(
      `math.randomseed(${randomInt(1, 2 ** 31 - 1)})`,
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
    const child = spawn("wrk", [
      "-t1",
      `-c${connections}`,
      `-d${seconds}s`,
      "--latency",
      // wrk leaves answers slower than its timeout (2 s by default) out of the latency
      // figures and counts them as errors; a longer one keeps slow tails in the p99.
      "--timeout",
      "10s",
      "-s",
      script,
      `${target.url}${scenario.path}`,
    ]);
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}:\n${text}`)),
    );
  });
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    output,
  );
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return {
    ok: requests - non2xx,
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
