/**
 * A preload for the benchmarks' server: samples the allocations that live long enough to
 * reach V8's old generation (promoted, whether or not a mark-compact frees them later) and
 * writes them as a `.heapprofile` (Chrome DevTools opens it; `bench/promoted-report.ts`
 * prints its largest allocation stacks). Objects that die young are left out, so what it
 * shows is what the young-generation GC had to keep.
 *
 *     RELAYBUS_PROMOTED_PROFILE=/tmp/promoted.heapprofile \
 *       RELAYBUS_BENCH_NODE_ARGS="--import ./bench/promoted-allocations.mjs" \
 *       npm run bench:ingest -- --duration 10 --only "10 entries"
 *     npx tsx bench/promoted-report.ts /tmp/promoted.heapprofile
 *
 * It samples from RELAYBUS_PROMOTED_FROM_S (default 4) to RELAYBUS_PROMOTED_UNTIL_S (default
 * 10) seconds after the server started, one sample per 4 KB allocated. Plain JavaScript: it
 * is loaded before tsx.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { setTimeout } from "node:timers";

const file = process.env["RELAYBUS_PROMOTED_PROFILE"] ?? "promoted.heapprofile";
const fromMs = 1000 * Number(process.env["RELAYBUS_PROMOTED_FROM_S"] ?? 4);
const untilMs = 1000 * Number(process.env["RELAYBUS_PROMOTED_UNTIL_S"] ?? 10);

const session = new Session();
session.connect();
const post = (method, params = {}) =>
  new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));

setTimeout(async () => {
  await post("HeapProfiler.enable");
  await post("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: false,
  });
  setTimeout(async () => {
    const { profile } = await post("HeapProfiler.stopSampling");
    writeFileSync(file, JSON.stringify(profile));
    process.stderr.write(`promoted allocations written to ${file}\n`);
  }, untilMs - fromMs).unref();
}, fromMs).unref();
