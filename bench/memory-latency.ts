// How long one dependent memory read takes on this machine, by working-set size: a pointer
// chase through a random cycle of cache lines, so no read can start before the last one ends
// and the hardware cannot prefetch. It explains the pattern machine's figures at large rule
// counts (bench/match.ts): past the CPU caches, every state a match visits costs this much.
// Not a test: it prints one JSON line per size.
//
//   npm run bench:memory                       (sizes 0.25, 2, 16, 64 and 256 MB)
//   npm run bench:memory -- --sizes 1,32 --reads 5000000
import { parseArgs } from "node:util";

const LINE_INTS = 16; // 64-byte cache lines of 4-byte integers

function chase(megabytes: number, reads: number): number {
  const lines = Math.max(2, Math.floor((megabytes * 1024 * 1024) / 64));
  const next = new Int32Array(lines * LINE_INTS);
  // A random cyclic order of the lines (Sattolo's shuffle): one cycle through all of them.
  const order = Int32Array.from({ length: lines }, (_, i) => i);
  for (let i = lines - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  for (let i = 0; i < lines; i++) next[order[i]! * LINE_INTS] = order[(i + 1) % lines]! * LINE_INTS;
  let at = 0;
  for (let i = 0; i < lines; i++) at = next[at]!; // warm: every line once
  const started = performance.now();
  for (let i = 0; i < reads; i++) at = next[at]!;
  const elapsedMs = performance.now() - started;
  if (at < 0) throw new Error("unreachable: keeps the chase from being optimised away");
  return (elapsedMs * 1e6) / reads;
}

const { values } = parseArgs({ options: { sizes: { type: "string" }, reads: { type: "string" } } });
const sizes = (values.sizes ?? "0.25,2,16,64,256").split(",").map(Number);
const reads = Number(values.reads ?? 5_000_000);
if (sizes.some((size) => !(size > 0)) || !(reads > 0)) {
  console.error("usage: npm run bench:memory -- [--sizes MB,MB,...] [--reads N]");
  process.exit(2);
}
for (const megabytes of sizes) console.log(JSON.stringify({ workingSetMB: megabytes, nsPerDependentRead: Number(chase(megabytes, reads).toFixed(1)) }));
