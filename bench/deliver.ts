/**
 * Delivery benchmark: deliveries/s from Relaybus to a local webhook receiver, and the
 * end-to-end latency from the PutEvents answer to the receiver.
 *
 *     npm run bench:deliver [-- --events 100000 --scenarios 1,1+t,10,10+t,1000,1000+t,latency --seconds 10 --rate 1000]
 *
 * Three processes: this one (set-up, the latency phase's producer), `relaybus serve` from the
 * sources (bench/bench-server.ts), and the receiver (bench/deliver-receiver.ts), which answers
 * 200 at once, so that neither the receiver's CPU nor its event loop counts against Relaybus.
 *
 * Throughput, per scenario (N targets, with or without the typical transform): N rules, each
 * matching its own event type and sending to its own path of the receiver. A backlog of
 * `--events` events, round-robin over the N types, is appended to the log before the server
 * starts; the run is timed from the server's start until the receiver has had every
 * delivery. Deliveries/s is given over the whole run (start-up included: process start,
 * tsx, rule load) and from the first delivery on; the floors are held to the second, which
 * is what delivery sustains once running.
 *
 * Latency: one rule, one target, no transform. Single-entry PutEvents are sent at a fixed
 * schedule of `--rate` events/s (not back to back) for 1 s of warm-up plus `--seconds`, over
 * undici keep-alive connections (never Node's global fetch: ~3,300 requests/s against
 * undici's ~62,000 per core, it would measure itself). For each event after the warm-up:
 * receiver arrival − PutEvents answer, and receiver arrival − request start. Times on both
 * sides are `performance.timeOrigin + performance.now()`, comparable across processes.
 *
 * Relaybus runs with its defaults (durability fsync, 256 deliveries in flight, 32 connections
 * per origin). It exits 0 below a floor too: this is a measurement; it says so plainly.
 */
import { fork } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { measureEvent } from "../src/events/sizing.js";
import { uuidV7 } from "../src/events/uuid-v7.js";
import { openSqliteStorage } from "../src/log/sqlite/open-sqlite-storage.js";
import type { EventToAppend, JsonObject } from "../src/types.js";
import { MODULE_EXEC_ARGV, modulePath } from "./bench-modules.js";
import { startBenchServer } from "./bench-server.js";

const ALL_SCENARIOS = ["1", "1+t", "10", "10+t", "1000", "1000+t", "latency"];
const { values: flags } = parseArgs({
  options: {
    events: { type: "string" },
    scenarios: { type: "string", default: ALL_SCENARIOS.join(",") },
    seconds: { type: "string", default: "10" },
    rate: { type: "string", default: "1000" },
  },
});
const scenarios = flags.scenarios.split(",").map((s) => s.trim());
for (const s of scenarios) {
  if (!ALL_SCENARIOS.includes(s)) {
    console.error(
      `--scenarios: unknown scenario ${JSON.stringify(s)}; known: ${ALL_SCENARIOS.join(", ")}`,
    );
    process.exit(2);
  }
}
const eventsFlag = flags.events === undefined ? undefined : Number(flags.events);
const latencySeconds = Number(flags.seconds);
const ratePerSecond = Number(flags.rate);
for (const [name, value] of [
  ["--events", eventsFlag ?? 1],
  ["--seconds", latencySeconds],
  ["--rate", ratePerSecond],
] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name}: expected a positive integer`);
    process.exit(2);
  }
}

/** Default backlog per scenario: 100,000 events, whatever the number of targets. */
const DEFAULT_EVENTS = 100_000;
const WARM_UP_SECONDS = 1;
/** The issue's floors on the 2-core reference machine. */
const FLOOR_ONE_TARGET = 20_000;
const FLOOR_ONE_TARGET_TRANSFORM = 15_000;
const FLOOR_P99_MS = 25;
/** Events per append while preloading the log (the log's group-commit batch). */
const PRELOAD_BATCH = 2_000;

/** bench/transform.ts's "typical" case: a few fields, a concatenation, a $map over 2 items. */
const TYPICAL_TRANSFORM =
  '{"orderId": data.id, "customer": data.customer.name & " (" & data.customer.tier & ")", "total": data.total, ' +
  '"lines": $map(data.items, function($i) { {"sku": $i.sku, "amount": $i.qty * $i.price} })}';
/** The order the typical transform is written for (bench/transform.ts). */
const ORDER_DATA: JsonObject = {
  id: "o-1001",
  total: 149.5,
  currency: "EUR",
  customer: { id: "c-42", name: "Ada Lovelace", tier: "gold", country: "de" },
  items: [
    { sku: "A-1", qty: 1, price: 99.5 },
    { sku: "B-7", qty: 2, price: 25 },
  ],
};

const now = (): number => performance.timeOrigin + performance.now();
/**
 * What the benchmark reports, printed once at the end: the server's own log lines (on stderr)
 * would otherwise break up the tables.
 */
const report: string[] = [];
const say = (line: string): void => {
  report.push(line);
};
const int = (n: number): string => Math.round(n).toLocaleString("en");
const ms = (n: number): string => `${n.toFixed(1)} ms`;
const seconds = (n: number): string => `${(n / 1000).toFixed(2)} s`;

// ---------------------------------------------------------------- the receiver process

interface Reached {
  count: number;
  firstAtMs: number;
  lastAtMs: number;
  paths: number;
  minPerPath: number;
  maxPerPath: number;
}

type FromReceiver =
  | { type: "ready"; port: number }
  | ({ type: "reached" } & Reached)
  | { type: "arrivals"; arrivals: [string, number][] };

interface ReceiverProcess {
  url: string;
  /** Resets the counts; resolves when `count` requests have arrived, rejects after `timeoutMs`. */
  expect(count: number, timeoutMs: number): Promise<Reached>;
  record(on: boolean): void;
  arrivals(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

async function startReceiver(): Promise<ReceiverProcess> {
  const child = fork(modulePath("bench/deliver-receiver"), [], {
    execArgv: [...MODULE_EXEC_ARGV],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const next = <T extends FromReceiver["type"]>(type: T, timeoutMs: number) =>
    new Promise<Extract<FromReceiver, { type: T }>>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off("message", onMessage);
        reject(new Error(`receiver: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (message: FromReceiver) => {
        if (message.type !== type) return;
        clearTimeout(timer);
        child.off("message", onMessage);
        resolve(message as Extract<FromReceiver, { type: T }>);
      };
      child.on("message", onMessage);
    });
  const { port } = await next("ready", 20_000);
  return {
    url: `http://127.0.0.1:${port}`,
    expect(count, timeoutMs) {
      const reached = next("reached", timeoutMs);
      child.send({ type: "expect", count });
      return reached;
    },
    record(on) {
      child.send({ type: "record", on });
    },
    async arrivals() {
      const answer = next("arrivals", 20_000);
      child.send({ type: "arrivals" });
      return new Map((await answer).arrivals);
    },
    async stop() {
      if (child.exitCode === null) child.send({ type: "stop" });
      await exited;
    },
  };
}

// ---------------------------------------------------------------- throughput

interface Scenario {
  name: string;
  targets: number;
  transform: boolean;
  events: number;
}

interface ThroughputResult {
  scenario: Scenario;
  readyMs: number;
  firstMs: number;
  allMs: number;
  overallPerSecond: number;
  steadyPerSecond: number;
  note: string;
}

function rulesFile(receiverUrl: string, targets: number, transform: boolean): string {
  const lines = ["bus: default", "rules:"];
  for (let i = 0; i < targets; i++) {
    lines.push(
      `  - name: r${i}`,
      `    pattern: {type: [bench.t${i}]}`,
      "    targets:",
      `      - id: t${i}`,
      `        webhook: {url: "${receiverUrl}/t${i}"}`,
    );
    if (transform)
      lines.push("        format: transform", `        transform: '${TYPICAL_TRANSFORM}'`);
  }
  return `${lines.join("\n")}\n`;
}

/** Appends `count` events round-robin over `types` types to the log of `dataDir`, then closes it. */
async function preload(dataDir: string, count: number, types: number): Promise<void> {
  const storage = openSqliteStorage({ dataDir, durability: "fsync-wal-only" });
  try {
    const time = new Date().toISOString();
    for (let start = 0; start < count; start += PRELOAD_BATCH) {
      const batch: EventToAppend[] = [];
      for (let i = start; i < Math.min(count, start + PRELOAD_BATCH); i++) {
        batch.push(
          measureEvent("default", {
            specversion: "1.0",
            id: uuidV7(),
            source: "bench.orders",
            type: `bench.t${i % types}`,
            time,
            datacontenttype: "application/json",
            data: ORDER_DATA,
          }),
        );
      }
      await storage.log.append(batch);
    }
  } finally {
    await storage.close();
  }
}

async function runThroughput(
  receiver: ReceiverProcess,
  scenario: Scenario,
): Promise<ThroughputResult> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-deliver-"));
  try {
    mkdirSync(join(dir, "rules"));
    writeFileSync(
      join(dir, "rules", "bench.yaml"),
      rulesFile(receiver.url, scenario.targets, scenario.transform),
    );
    // One rule per target: past EventBridge's default quota of 300 rules per bus, raise it.
    const config = join(dir, "relaybus.yaml");
    writeFileSync(config, `limits:\n  maxRulesPerBus: ${Math.max(300, scenario.targets)}\n`);
    await preload(join(dir, "data"), scenario.events, scenario.targets);
    // Generous: a run 20 times slower than the floor still ends with its figure.
    const reached = receiver.expect(scenario.events, 60_000 + scenario.events);
    const startedAt = now();
    const server = await startBenchServer(dir, { RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "true", RELAYBUS_CONFIG: config });
    const readyAt = now();
    try {
      const done = await reached;
      const perPath = scenario.events / scenario.targets;
      const even =
        done.paths === scenario.targets &&
        done.minPerPath >= Math.floor(perPath) &&
        done.maxPerPath <= Math.ceil(perPath);
      return {
        scenario,
        readyMs: readyAt - startedAt,
        firstMs: done.firstAtMs - startedAt,
        allMs: done.lastAtMs - startedAt,
        overallPerSecond: (scenario.events / (done.lastAtMs - startedAt)) * 1000,
        steadyPerSecond:
          ((scenario.events - 1) / Math.max(1e-3, done.lastAtMs - done.firstAtMs)) * 1000,
        note: even
          ? ""
          : `uneven: ${done.paths} paths, ${done.minPerPath}..${done.maxPerPath} per path (duplicates?)`,
      };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function floorOf(scenario: Scenario): number | undefined {
  if (scenario.targets !== 1) return undefined;
  return scenario.transform ? FLOOR_ONE_TARGET_TRANSFORM : FLOOR_ONE_TARGET;
}

function printThroughput(results: readonly ThroughputResult[]): void {
  say("\n## Throughput: a preloaded backlog drained to the receiver\n");
  say(
    "| targets | transform | events | server answering after | first delivery after | all delivered after | deliveries/s, whole run | deliveries/s, from first delivery | floor | |",
  );
  say("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const r of results) {
    const floor = floorOf(r.scenario);
    const verdict =
      floor === undefined ? "" : r.steadyPerSecond >= floor ? "ok" : "**below floor**";
    say(
      `| ${int(r.scenario.targets)} | ${r.scenario.transform ? "typical" : "none"} | ${int(r.scenario.events)} | ` +
        `${seconds(r.readyMs)} | ${seconds(r.firstMs)} | ${seconds(r.allMs)} | ${int(r.overallPerSecond)} | ` +
        `${int(r.steadyPerSecond)} | ${floor === undefined ? "-" : int(floor)} | ${[verdict, r.note].filter(Boolean).join("; ")} |`,
    );
  }
}

// ---------------------------------------------------------------- latency

interface Sent {
  index: number;
  startAtMs: number;
  answerAtMs: number;
  eventId: string;
}

async function runLatency(receiver: ReceiverProcess): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-deliver-"));
  const agent = new Agent({ connections: 32, pipelining: 1, keepAliveTimeout: 60_000 });
  try {
    mkdirSync(join(dir, "rules"));
    writeFileSync(
      join(dir, "rules", "bench.yaml"),
      `bus: default\nrules:\n  - name: latency\n    pattern: {source: [bench.latency]}\n    targets:\n      - id: hook\n        webhook: {url: "${receiver.url}/latency"}\n`,
    );
    const server = await startBenchServer(dir, { RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "true" });
    try {
      const total = ratePerSecond * (WARM_UP_SECONDS + latencySeconds);
      const warmUp = ratePerSecond * WARM_UP_SECONDS;
      const body = JSON.stringify({
        Entries: [
          {
            Source: "bench.latency",
            DetailType: "order.created",
            Detail: JSON.stringify(ORDER_DATA),
          },
        ],
      });
      const url = `${server.url}/v1/events`;
      const sent: Sent[] = [];
      let failed = 0;
      let maxLateMs = 0;
      const inFlight = new Set<Promise<void>>();
      const send = (index: number) => {
        const startAtMs = now();
        const call = request(url, {
          method: "POST",
          dispatcher: agent,
          headers: { "content-type": "application/json" },
          body,
        })
          .then(async (response) => {
            const text = await response.body.text();
            const answerAtMs = now();
            const answer = JSON.parse(text) as {
              FailedEntryCount?: number;
              Entries?: { EventId?: string }[];
            };
            const eventId = answer.Entries?.[0]?.EventId;
            if (
              response.statusCode !== 200 ||
              answer.FailedEntryCount !== 0 ||
              eventId === undefined
            )
              failed++;
            else sent.push({ index, startAtMs, answerAtMs, eventId });
          })
          .catch(() => {
            failed++;
          });
        inFlight.add(call);
        void call.finally(() => inFlight.delete(call));
      };

      receiver.record(true);
      const arrived = receiver.expect(total, (WARM_UP_SECONDS + latencySeconds) * 1000 + 30_000);
      arrived.catch(() => undefined); // judged below, by what arrived
      const intervalMs = 1000 / ratePerSecond;
      const t0 = now();
      let next = 0;
      while (next < total) {
        const due = Math.min(total, Math.floor((now() - t0) / intervalMs) + 1);
        while (next < due) {
          if (next >= warmUp) maxLateMs = Math.max(maxLateMs, now() - (t0 + next * intervalMs));
          send(next++);
        }
        const waitMs = t0 + next * intervalMs - now();
        if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      }
      const sendingMs = now() - t0;
      await Promise.all(inFlight);
      await arrived.catch((error: unknown) => say(`\nnot every event arrived: ${String(error)}`));
      receiver.record(false);
      const arrivals = await receiver.arrivals();

      const afterAnswer: number[] = [];
      const afterStart: number[] = [];
      let missing = 0;
      for (const s of sent) {
        if (s.index < warmUp) continue;
        const at = arrivals.get(s.eventId);
        if (at === undefined) {
          missing++;
          continue;
        }
        afterAnswer.push(at - s.answerAtMs);
        afterStart.push(at - s.startAtMs);
      }
      const measured = sent.filter((s) => s.index >= warmUp);
      const answerTimes = measured.map((s) => s.answerAtMs - s.startAtMs);

      say(
        `\n## Latency: PutEvents (1 entry) at ${int(ratePerSecond)} events/s for ${latencySeconds} s after ${WARM_UP_SECONDS} s of warm-up, one target, no transform\n`,
      );
      say("| measure | p50 | p90 | p99 | max | floor | |");
      say("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
      const row = (name: string, values: number[], floorP99?: number) => {
        const q = quantiles(values);
        const verdict =
          floorP99 === undefined || q === undefined
            ? ""
            : q.p99 < floorP99
              ? "ok"
              : "**below floor**";
        const cells = q === undefined ? ["-", "-", "-", "-"] : [q.p50, q.p90, q.p99, q.max].map(ms);
        say(
          `| ${name} | ${cells.join(" | ")} | ${floorP99 === undefined ? "-" : `p99 < ${floorP99} ms`} | ${verdict} |`,
        );
      };
      row("receiver arrival − PutEvents answer", afterAnswer, FLOOR_P99_MS);
      row("receiver arrival − request start", afterStart);
      row("PutEvents answer − request start", answerTimes);
      say(
        `\n${int(measured.length)} events measured (${int(total)} sent in ${seconds(sendingMs)}, after the warm-up a send was at most ${ms(maxLateMs)} behind schedule); ` +
          `${failed} failed, ${missing} never reached the receiver.`,
      );
    } finally {
      await server.stop();
    }
  } finally {
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function quantiles(
  values: number[],
): { p50: number; p90: number; p99: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

// ---------------------------------------------------------------- main

const cpu = cpus();
say(
  `relaybus delivery benchmark (bench/deliver.ts): node ${process.version}, ${cpu.length} cores (${cpu[0]?.model ?? "unknown CPU"})`,
);
say(
  "Relaybus with its defaults (durability fsync, 256 deliveries in flight, 32 connections per origin); " +
    "the receiver is its own process answering 200 at once. Floors: " +
    `${int(FLOOR_ONE_TARGET)} deliveries/s to one target, ${int(FLOOR_ONE_TARGET_TRANSFORM)} with the typical transform ` +
    `(held to the rate from the first delivery on), p99 under ${FLOOR_P99_MS} ms from the PutEvents answer to the receiver.`,
);

const receiver = await startReceiver();
try {
  const results: ThroughputResult[] = [];
  for (const name of scenarios.filter((s) => s !== "latency")) {
    const scenario: Scenario = {
      name,
      targets: Number(name.replace("+t", "")),
      transform: name.endsWith("+t"),
      events: eventsFlag ?? DEFAULT_EVENTS,
    };
    try {
      results.push(await runThroughput(receiver, scenario));
    } catch (error) {
      say(`\nscenario ${name} did not finish: ${String(error)}`);
    }
  }
  if (results.length > 0) printThroughput(results);
  if (scenarios.includes("latency")) {
    await runLatency(receiver).catch((error: unknown) =>
      say(`\nthe latency phase did not finish: ${String(error)}`),
    );
  }
} finally {
  await receiver.stop();
  console.log(report.join("\n"));
}
