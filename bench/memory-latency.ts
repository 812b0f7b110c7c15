// How long one dependent memory read takes on this machine, by working-set size: a pointer
// chase through a random cycle of cache lines, so no read can start before the last one ends
// and the hardware cannot prefetch. It explains the pattern machine's figures at large rule
// counts (bench/match.ts): past the CPU caches, every state a match visits costs this much.
// With --chains, it also follows several chases at once, one read of each in turn: reads that
// do not wait on each other overlap, and the time per read falls with the number of chains.
// Not a test: it prints one JSON line per size (and chain count).
//
//   npm run bench:memory                       (sizes 0.25, 2, 16, 64 and 256 MB)
//   npm run bench:memory -- --sizes 1,32 --reads 5000000
//   npm run bench:memory -- --sizes 64 --chains 1,2,4,8
import { parseArgs } from "node:util";

const LINE_INTS = 16; // 64-byte cache lines of 4-byte integers

/** One random cycle through every line of a working set of `megabytes`; each line's first integer is the next line's offset. */
function randomCycle(megabytes: number): { next: Int32Array; start: (chain: number, chains: number) => number } {
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
  // Chains start evenly spaced along the cycle, so they never meet.
  return { next, start: (chain, chains) => order[Math.floor((chain * lines) / chains)]! * LINE_INTS };
}

/** Nanoseconds per read when `chains` chases through `cycle` advance one read each in turn. */
function chase(cycle: ReturnType<typeof randomCycle>, chains: number, reads: number): number {
  const at = Int32Array.from({ length: chains }, (_, chain) => cycle.start(chain, chains));
  const next = cycle.next;
  const rounds = Math.ceil(reads / chains);
  const started = performance.now();
  for (let round = 0; round < rounds; round++) for (let chain = 0; chain < chains; chain++) at[chain] = next[at[chain]!]!;
  const elapsedMs = performance.now() - started;
  if (at.some((offset) => offset < 0)) throw new Error("unreachable: keeps the chase from being optimised away");
  return (elapsedMs * 1e6) / (rounds * chains);
}

const { values } = parseArgs({ options: { sizes: { type: "string" }, reads: { type: "string" }, chains: { type: "string" } } });
const sizes = (values.sizes ?? "0.25,2,16,64,256").split(",").map(Number);
const reads = Number(values.reads ?? 5_000_000);
const chainCounts = values.chains === undefined ? undefined : values.chains.split(",").map(Number);
if (sizes.some((size) => !(size > 0)) || !(reads > 0) || chainCounts?.some((count) => !Number.isInteger(count) || count < 1) === true) {
  console.error("usage: npm run bench:memory -- [--sizes MB,MB,...] [--reads N] [--chains N,N,...]");
  process.exit(2);
}
for (const megabytes of sizes) {
  const cycle = randomCycle(megabytes);
  if (chainCounts === undefined) {
    console.log(JSON.stringify({ workingSetMB: megabytes, nsPerDependentRead: Number(chase(cycle, 1, reads).toFixed(1)) }));
    continue;
  }
  for (const chains of chainCounts) {
    console.log(JSON.stringify({ workingSetMB: megabytes, chains, nsPerRead: Number(chase(cycle, chains, reads).toFixed(1)) }));
  }
}
