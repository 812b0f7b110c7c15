/**
 * Event-stream benchmark: how fast a stream carries a bus's backlog to a webhook (its
 * ceiling on this machine), how closely the CU quota holds it to 1 CU (events bound, bytes
 * bound), and how the scaler moves a backlogged stream from 1 CU up to its maximum and back.
 *
 *     npm run bench:stream [-- --scenarios ceiling,quota-1kb,quota-20kb,scale --events 200000 --seconds 30]
 *
 * Three processes: this one (set-up, measurement), `relaybus serve` (compiled)
 * (bench/bench-server.ts), and the receiver (bench/stream-receiver.ts), which answers 200 at
 * once and counts the events inside each batch body, so that neither its CPU nor its event
 * loop counts against Relaybus. Every stream reads the bus `default` from its oldest event and
 * writes to the webhook sink in `mode: batch`. The backlog is appended to the log before the
 * server starts (as bench/deliver.ts does), so the source never waits for a producer, and
 * marked as routed and metered already, so the server's only work is the streams.
 *
 * - `ceiling`: minCU = maxCU = 64 (320,000 events/s, 3.2 GB/s: no quota in practice), a
 *   backlog of `--events` 1 KB events, batches of 100 and of 500 (two streams in turn over the
 *   same backlog). Events/s from the first arrival at the receiver to the last, and from the
 *   stream's own counters (eventsOut between the first commit seen and the last).
 * - `quota-1kb`: minCU = maxCU = 1 (5,000 events/s, 50 MB/s) over a backlog of at least 125%
 *   of what the quota can carry in the run; events/s over `--seconds` after 2 s of warm-up, by
 *   the receiver's count and by the stream's counters, and the deviation from 5,000. Then the
 *   ceiling of the same backlog, so that a reader sees how much faster the source could go.
 * - `quota-20kb`: the same with 20 KB events: the bytes bound (50 MB/s, 2,560 events/s) should
 *   bind; bytes/s, events/s, which bound bound, and the ceiling for 20 KB events.
 * - `scale`: minCU 1, maxCU 4, `streams.scaleIntervalMs` 2,000 (through a configuration file), a
 *   backlog of `--events` (default 300,000) 1 KB events; the CU timeline until the stream is
 *   back at 1 CU after draining, and the events/s it carried at each CU count.
 *
 * Event sizes are exact: each event's structured JSON (what the quota meters) is 1,024 or
 * 20,480 bytes. `quota-1kb` takes the larger of `--events` and what the run needs; `quota-20kb`
 * takes what the run needs (102,400 events, 2 GB, for 30 s), not `--events`. Each server first
 * runs a warm-up stream over 10 MiB of the backlog (module loading, the JIT's first passes).
 * Relaybus runs with its defaults otherwise (loopback targets allowed). The benchmark exits 0 whatever the
 * figures: it is a measurement, and says so plainly when a figure is below what it expects.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { modulePath } from "./bench-modules.js";
import { startBenchServer, type BenchServer } from "./bench-server.js";
import { preloadBacklog } from "./stream-backlog.js";
import { createStreamApi, type StreamApi } from "./stream-api.js";
import {
  assertRunning,
  drain,
  hold,
  NO_QUOTA_CU,
  streamDefinition,
  warmUp,
} from "./stream-measure.js";
import { startStreamReceiver, type StreamReceiver } from "./stream-receiver-process.js";

const ALL_SCENARIOS = ["ceiling", "quota-1kb", "quota-20kb", "scale"];
const { values: flags } = parseArgs({
  options: {
    events: { type: "string" },
    scenarios: { type: "string", default: ALL_SCENARIOS.join(",") },
    seconds: { type: "string", default: "30" },
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
const measureSeconds = Number(flags.seconds);
for (const [name, value] of [
  ["--events", eventsFlag ?? 1],
  ["--seconds", measureSeconds],
] as const) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name}: expected a positive integer`);
    process.exit(2);
  }
}

/** Default backlog of `ceiling` and `quota-1kb`, and of `scale`. */
const DEFAULT_EVENTS = 200_000;
const DEFAULT_SCALE_EVENTS = 300_000;
const SMALL_EVENT_BYTES = 1_024;
const LARGE_EVENT_BYTES = 20_480;
/** Relaybus's default CU: `streams.cuEventsPerSecond` and `streams.cuBytesPerSecond`. */
const CU_EVENTS_PER_SECOND = 5_000;
const CU_BYTES_PER_SECOND = 52_428_800;
const WARM_UP_MS = 2_000;
/** What a warm-up stream carries before the measured streams of a server start: 10 MiB. */
const WARM_UP_BYTES = 10_485_760;
/** A quota run's backlog holds at least this much more than the quota can carry in the run. */
const BACKLOG_MARGIN = 1.25;
const SCALE_INTERVAL_MS = 2_000;
const SCALE_MAX_CU = 4;
/** A bound that carries at least this share of its quota is the one that binds. */
const BINDING_SHARE = 0.9;
/** How often the scale scenario reads the stream's status and capacity. */
const POLL_MS = 250;

const report: string[] = [];
/** Lines of the final report; rows are also printed at once, as progress. */
const say = (line: string): void => {
  report.push(line);
};
const progress = (line: string): void => {
  console.log(`[bench:stream] ${line}`);
};
const int = (n: number): string => Math.round(n).toLocaleString("en");
const mb = (bytesPerSecond: number): string => `${(bytesPerSecond / 1_048_576).toFixed(1)} MB/s`;
const pct = (n: number): string => `${n >= 0 ? "+" : ""}${n.toFixed(1)}%`;
const secondsOf = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const now = (): number => performance.timeOrigin + performance.now();

/** One row of the final table. */
interface Row {
  scenario: string;
  events: string;
  batch: number;
  capacity: string;
  expected: string;
  receiverPerSecond?: number;
  countersPerSecond?: number;
  bytesPerSecond?: number;
  note: string;
}
const rows: Row[] = [];
function addRow(row: Row): void {
  rows.push(row);
  progress(
    `${row.scenario}: ${row.receiverPerSecond === undefined ? "-" : int(row.receiverPerSecond)} events/s at the receiver, ` +
      `${row.countersPerSecond === undefined ? "-" : int(row.countersPerSecond)} by the stream's counters` +
      `${row.bytesPerSecond === undefined ? "" : `, ${mb(row.bytesPerSecond)}`}; ${row.note}`,
  );
}

// ---------------------------------------------------------------- backlog and server

/**
 * Preloads a backlog, starts the server over it (with `config` as its configuration file,
 * when given), runs `body`, and removes everything again.
 */
async function withServer<T>(
  receiver: StreamReceiver,
  backlog: { events: number; bytes: number },
  config: string | undefined,
  body: (server: BenchServer, api: StreamApi) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-stream-"));
  try {
    mkdirSync(join(dir, "rules"));
    const env: Record<string, string> = { RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "true" };
    if (config !== undefined) {
      writeFileSync(join(dir, "relaybus.yaml"), config);
      env["RELAYBUS_CONFIG"] = join(dir, "relaybus.yaml");
    }
    const preloadStartedAt = now();
    await preloadBacklog(join(dir, "data"), backlog.events, backlog.bytes);
    progress(
      `backlog of ${int(backlog.events)} events of ${int(backlog.bytes)} bytes appended in ${secondsOf(now() - preloadStartedAt)}`,
    );
    const server = await startBenchServer(dir, env);
    try {
      const api = createStreamApi(server.url);
      await warmUp(
        api,
        receiver,
        Math.min(backlog.events, Math.ceil(WARM_UP_BYTES / backlog.bytes)),
      );
      return await body(server, api);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- scenarios

async function runCeiling(receiver: StreamReceiver): Promise<void> {
  const events = eventsFlag ?? DEFAULT_EVENTS;
  await withServer(
    receiver,
    { events, bytes: SMALL_EVENT_BYTES },
    undefined,
    async (_server, api) => {
      for (const maxEvents of [100, 500]) {
        const result = await drain(
          api,
          receiver,
          `ceiling-${maxEvents}`,
          events,
          maxEvents,
          SMALL_EVENT_BYTES,
        );
        addRow({
          scenario: "ceiling",
          events: `${int(events)} × 1 KB`,
          batch: maxEvents,
          capacity: `${NO_QUOTA_CU} CU (no quota in practice)`,
          expected: "the machine's limit",
          receiverPerSecond: result.receiverPerSecond,
          countersPerSecond: result.countersPerSecond,
          bytesPerSecond: result.bytesPerSecond,
          note: [`drained in ${secondsOf(result.totalMs)} from the stream's creation`, result.note]
            .filter(Boolean)
            .join("; "),
        });
      }
    },
  );
}

async function runQuota(receiver: StreamReceiver, eventBytes: number): Promise<void> {
  const scenario = eventBytes === SMALL_EVENT_BYTES ? "quota-1kb" : "quota-20kb";
  const size = eventBytes === SMALL_EVENT_BYTES ? "1 KB" : "20 KB";
  const maxEvents = 100;
  const quotaPerSecond = Math.min(CU_EVENTS_PER_SECOND, CU_BYTES_PER_SECOND / eventBytes);
  const needed = Math.ceil(BACKLOG_MARGIN * quotaPerSecond * (WARM_UP_MS / 1000 + measureSeconds));
  // 1 KB: --events, or more when the run needs more; 20 KB: what the run needs (200,000 would be 4 GB).
  const events =
    eventBytes === SMALL_EVENT_BYTES ? Math.max(eventsFlag ?? DEFAULT_EVENTS, needed) : needed;
  await withServer(receiver, { events, bytes: eventBytes }, undefined, async (_server, api) => {
    const held = await hold(
      api,
      receiver,
      `${scenario}-1cu`,
      maxEvents,
      WARM_UP_MS,
      measureSeconds,
    );
    progress(`${scenario}: 1 CU measured; now the ceiling of the same backlog`);
    const ceiling = await drain(
      api,
      receiver,
      `${scenario}-ceiling`,
      events,
      maxEvents,
      eventBytes,
    );
    const eventsShare = held.countersPerSecond / CU_EVENTS_PER_SECOND;
    const bytesShare = held.countersBytesPerSecond / CU_BYTES_PER_SECOND;
    const shares = `events at ${Math.round(eventsShare * 100)}% of 5,000/s, bytes at ${Math.round(bytesShare * 100)}% of 50 MB/s`;
    const bound =
      Math.max(eventsShare, bytesShare) < BINDING_SHARE
        ? "neither bound"
        : eventsShare >= bytesShare
          ? "the events bound"
          : "the bytes bound";
    const deviation = ((held.countersPerSecond - quotaPerSecond) / quotaPerSecond) * 100;
    const receiverDeviation = ((held.receiverPerSecond - quotaPerSecond) / quotaPerSecond) * 100;
    const ceilingTimes = ceiling.receiverPerSecond / quotaPerSecond;
    const warnings: string[] = [];
    if (held.eventsOut >= events)
      warnings.push("**the backlog ran out during the window: the figure is void**");
    if (ceiling.receiverPerSecond < quotaPerSecond * 1.05) {
      warnings.push(
        eventBytes === SMALL_EVENT_BYTES
          ? "**this machine cannot carry 5,000 events/s of 1 KB events through bus → webhook: the quota cannot be shown to bind here**"
          : `**this machine cannot move 50 MB/s through bus → webhook (its ceiling for 20 KB events: ${mb(ceiling.bytesPerSecond)}): the bytes bound cannot be shown to bind here**`,
      );
    }
    say(
      `\n## ${scenario}: 1 CU, ${int(events)} × ${size} backlog, ${measureSeconds} s after ${WARM_UP_MS / 1000} s of warm-up\n`,
    );
    say(
      `- quota: ${int(quotaPerSecond)} events/s (${eventBytes === SMALL_EVENT_BYTES ? "the events bound" : `50 MB/s ÷ ${int(eventBytes)} bytes`})`,
    );
    say(
      `- receiver: ${int(held.receiverPerSecond)} events/s, ${mb(held.receiverBytesPerSecond)} (bodies); ${pct(receiverDeviation)} from ${int(quotaPerSecond)}`,
    );
    say(
      `- stream counters: ${int(held.countersPerSecond)} events/s, ${mb(held.countersBytesPerSecond)} (bytesOut); ${pct(deviation)} from ${int(quotaPerSecond)}`,
    );
    say(
      `- what bound: ${bound} (${shares}); throttled ${Math.round(held.throttledShare * 100)}% of the window`,
    );
    say(
      `- ceiling of the same backlog (no quota in practice, batch ${maxEvents}): ${int(ceiling.receiverPerSecond)} events/s, ${mb(ceiling.bytesPerSecond)}: ` +
        `the source could go ${ceilingTimes.toFixed(1)}× faster than the quota`,
    );
    for (const warning of warnings) say(`- ${warning}`);
    const note = [
      `${pct(deviation)} vs ${int(quotaPerSecond)}/s`,
      `${bound} (${shares})`,
      `ceiling ${ceilingTimes.toFixed(1)}× the quota`,
      ...warnings,
    ].join("; ");
    addRow({
      scenario,
      events: `${int(events)} × ${size}`,
      batch: maxEvents,
      capacity: "1 CU",
      expected:
        eventBytes === SMALL_EVENT_BYTES
          ? "5,000 events/s"
          : `50 MB/s = ${int(quotaPerSecond)} events/s`,
      receiverPerSecond: held.receiverPerSecond,
      countersPerSecond: held.countersPerSecond,
      bytesPerSecond: held.countersBytesPerSecond,
      note,
    });
    addRow({
      scenario: `${scenario} ceiling`,
      events: `${int(events)} × ${size}`,
      batch: maxEvents,
      capacity: `${NO_QUOTA_CU} CU (no quota in practice)`,
      expected: "the machine's limit",
      receiverPerSecond: ceiling.receiverPerSecond,
      countersPerSecond: ceiling.countersPerSecond,
      bytesPerSecond: ceiling.bytesPerSecond,
      note: ceiling.note || `the same backlog without a quota, for comparison`,
    });
  });
}

async function runScale(receiver: StreamReceiver): Promise<void> {
  const events = eventsFlag ?? DEFAULT_SCALE_EVENTS;
  const config = `streams:\n  scaleIntervalMs: ${SCALE_INTERVAL_MS}\n`;
  await withServer(receiver, { events, bytes: SMALL_EVENT_BYTES }, config, async (_server, api) => {
    const name = "scale";
    const path = `/${name}`;
    const createdAtMs = Date.now();
    await api.create(streamDefinition(name, receiver.url + path, 100, 1, SCALE_MAX_CU));
    // Draining at 1 CU at worst, then three looks per CU given back, twice over.
    const deadline =
      createdAtMs +
      (events / CU_EVENTS_PER_SECOND) * 1000 +
      2 * 3 * SCALE_MAX_CU * SCALE_INTERVAL_MS +
      30_000;
    let previous = await api.status(name);
    let drainedAtMs: number | undefined;
    let capacity = await api.capacity(name);
    /** Per CU count: events carried, ms spent and ms throttled there while the backlog lasted. */
    const perCU = new Map<number, { events: number; ms: number; throttledMs: number }>();
    let timedOut = false;
    for (;;) {
      await sleep(POLL_MS);
      const [status, history] = await Promise.all([api.status(name), api.capacity(name)]);
      assertRunning(status, name);
      capacity = history;
      const cu = previous.live?.currentCU ?? previous.capacity.currentCU;
      if (
        drainedAtMs === undefined &&
        previous.lastEventAtMs !== undefined &&
        status.lastEventAtMs !== undefined
      ) {
        const spent = perCU.get(cu) ?? { events: 0, ms: 0, throttledMs: 0 };
        spent.events += status.counters.eventsOut - previous.counters.eventsOut;
        spent.ms += status.lastEventAtMs - previous.lastEventAtMs;
        spent.throttledMs += status.counters.throttledMs - previous.counters.throttledMs;
        perCU.set(cu, spent);
      }
      if (drainedAtMs === undefined && status.counters.eventsOut >= events)
        drainedAtMs = status.lastEventAtMs ?? Date.now();
      previous = status;
      // Back at 1 CU after draining; a stream that never grew ends a few looks after draining.
      const settled =
        capacity.changes.length > 0 ||
        Date.now() - (drainedAtMs ?? Date.now()) > 2 * SCALE_INTERVAL_MS;
      if (drainedAtMs !== undefined && capacity.currentCU === 1 && settled) break;
      if (Date.now() > deadline) {
        timedOut = true;
        break;
      }
    }
    await api.remove(name);
    const changes = [...capacity.changes].reverse();
    const pathOfCU = [1, ...changes.map((c) => c.toCU)];
    const peak = Math.max(...pathOfCU);
    say(
      `\n## scale: CU timeline (minCU 1, maxCU ${SCALE_MAX_CU}, scaleIntervalMs ${int(SCALE_INTERVAL_MS)}, ${int(events)} × 1 KB backlog)\n`,
    );
    say("| after | from → to | reason |");
    say("| ---: | --- | --- |");
    for (const change of changes)
      say(
        `| ${secondsOf(change.atMs - createdAtMs)} | ${change.fromCU} → ${change.toCU} | ${change.reason} |`,
      );
    say(
      `\nbacklog drained after ${drainedAtMs === undefined ? "(not drained)" : secondsOf(drainedAtMs - createdAtMs)}; events/s carried at each CU count while the backlog lasted:`,
    );
    for (const [cu, spent] of [...perCU].sort(([a], [b]) => a - b)) {
      if (spent.ms <= 0) continue;
      const rate = (spent.events / spent.ms) * 1000;
      say(
        `- ${cu} CU (quota ${int(cu * CU_EVENTS_PER_SECOND)}/s): ${int(rate)} events/s over ${secondsOf(spent.ms)} ` +
          `(${Math.round((rate / (cu * CU_EVENTS_PER_SECOND)) * 100)}% of the quota), throttled ${Math.round((spent.throttledMs / spent.ms) * 100)}% of the time`,
      );
    }
    const notes = [`capacity went ${pathOfCU.join(" → ")}`];
    if (drainedAtMs !== undefined)
      notes.push(`drained after ${secondsOf(drainedAtMs - createdAtMs)}`);
    if (peak < SCALE_MAX_CU) {
      // cu-scaler.ts adds a CU only after a look in which the quota held the stream back for
      // at least half the time: at N CU that takes a ceiling of at least 2 × N × 5,000 events/s.
      notes.push(
        `**never reached ${SCALE_MAX_CU} CU**: the scaler adds a CU only when the quota held the stream back at least 50% of a look, ` +
          `which at ${peak} CU needs a ceiling of ${int(2 * peak * CU_EVENTS_PER_SECOND)} events/s or more on this machine`,
      );
    }
    if (timedOut) notes.push("**not back at 1 CU before the deadline**");
    const peakRate = perCU.get(peak);
    addRow({
      scenario: "scale",
      events: `${int(events)} × 1 KB`,
      batch: 100,
      capacity: `1..${SCALE_MAX_CU} CU, look every ${secondsOf(SCALE_INTERVAL_MS)}`,
      expected: `1 → ${SCALE_MAX_CU} → 1 CU`,
      countersPerSecond:
        peakRate === undefined || peakRate.ms <= 0
          ? undefined
          : (peakRate.events / peakRate.ms) * 1000,
      note: `${notes.join("; ")}${peakRate === undefined ? "" : ` (events/s: at ${peak} CU)`}`,
    });
  });
}

// ---------------------------------------------------------------- main

const cpu = cpus();
const command = `npm run bench:stream -- ${process.argv.slice(2).join(" ")}`
  .trim()
  .replace(/ --$/, "");
say(
  `relaybus stream benchmark (bench/stream.ts): node ${process.version}, ${cpu.length} cores (${cpu[0]?.model ?? "unknown CPU"})`,
);
say(
  `load average at the start: ${loadavg()
    .map((n) => n.toFixed(1))
    .join(", ")} (a busy machine gives lower figures)`,
);
say(
  "Streams read the bus `default` from its oldest event (a backlog appended before the server started) and write to a " +
    "webhook sink in batch mode; the receiver is its own process, answering 200 at once and counting the events in each body. " +
    `1 CU = ${int(CU_EVENTS_PER_SECOND)} events/s and ${int(CU_BYTES_PER_SECOND)} bytes/s (Relaybus's defaults). ` +
    `"${NO_QUOTA_CU} CU" means no quota in practice: ${int(NO_QUOTA_CU * CU_EVENTS_PER_SECOND)} events/s, far above what one machine carries. ` +
    `Quota runs measure over ${measureSeconds} s after ${WARM_UP_MS / 1000} s of warm-up. This is a measurement: it exits 0 whatever the figures.`,
);

const receiver = await startStreamReceiver(
  modulePath("bench/stream-receiver"),
);
try {
  for (const scenario of scenarios) {
    progress(`scenario ${scenario}`);
    try {
      if (scenario === "ceiling") await runCeiling(receiver);
      if (scenario === "quota-1kb") await runQuota(receiver, SMALL_EVENT_BYTES);
      if (scenario === "quota-20kb") await runQuota(receiver, LARGE_EVENT_BYTES);
      if (scenario === "scale") await runScale(receiver);
    } catch (error) {
      say(`\nscenario ${scenario} did not finish: ${(error as Error).message}`);
      progress(`scenario ${scenario} did not finish: ${(error as Error).message}`);
    }
  }
} finally {
  await receiver.stop();
  say(
    `\nload average at the end: ${loadavg()
      .map((n) => n.toFixed(1))
      .join(", ")}`,
  );
  say("\n## Results\n");
  say(
    "| scenario | backlog | batch | capacity | expected | events/s (receiver) | events/s (stream counters) | bytes/s | notes |",
  );
  say("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | --- |");
  const cell = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? "-" : int(n));
  for (const r of rows) {
    say(
      `| ${r.scenario} | ${r.events} | ${r.batch} | ${r.capacity} | ${r.expected} | ${cell(r.receiverPerSecond)} | ${cell(r.countersPerSecond)} | ` +
        `${r.bytesPerSecond === undefined || Number.isNaN(r.bytesPerSecond) ? "-" : mb(r.bytesPerSecond)} | ${r.note} |`,
    );
  }
  say(`\nCommand: \`${command}\``);
  console.log(`\n${report.join("\n")}`);
}
