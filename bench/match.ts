// Events per second of one pattern machine holding many patterns: the cost of matching an
// event against a whole bus's rules, which the bus-wide machine of issue 3 should keep
// independent of how many rules there are. Not a test: it prints figures, one JSON line per
// run, and never judges them.
//
//   npm run bench:match -- --patterns patterns.jsonl --events events.jsonl [--reference]
//   npm run bench:match -- --workload selective --rules 10000 [--events 10000] [--seed 1] [--reference] [--write DIR]
//   npm run bench:match -- --workload dense --rules 1000 --reference
//   npm run bench:match -- --sizes 100,10000,100000     (selective at each size, then the ratio)
//
// Files hold one JSON value a line (blank lines skipped): patterns go through
// parseEventPattern; events are used as they are. The workloads are in bench/match-workloads.ts.
//
// Output fields: patterns, events (counts); eventsPerSecond (matching only, after a warm-up,
// for at least --seconds, default 2); matchesPerEvent, matchesMin, matchesMax (over every
// event); buildMs (buildPatternMachine alone, patterns already parsed); heapUsedMB (V8 heap in
// use after the build and a forced GC, events and parsed patterns included), arrayBuffersMB
// (typed arrays' memory, outside that heap: the laid-out machine lives there), memoryMB (the
// two together) and machineMB (what the build added to both). With --reference: referenceEventsPerSecond (matchesEventPattern over
// every pattern, per event), speedup, and referenceCheckedEvents (events on which the machine's
// keys were checked against the reference's; a difference aborts the run).
//
// The forced GC needs node's --expose-gc, which the npm script passes
// (`node scripts/bench.mjs --expose-gc bench/match.ts`). Run any other way (`npx tsx bench/match.ts`),
// the bench turns the flag on at run time (v8.setFlagsFromString) and takes `gc` from a fresh
// context, which is what --expose-gc would have given.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { buildPatternMachine } from "../src/patterns/pattern-machine.js";
import { parseEventPattern } from "../src/patterns/parse-pattern.js";
import type { EventPattern } from "../src/patterns/pattern-types.js";
import { matchesEventPattern } from "../src/patterns/reference-matcher.js";
import { generateWorkload, WORKLOADS, type WorkloadName } from "./match-workloads.js";

const USAGE = `usage: npm run bench:match -- (--patterns FILE --events FILE | --workload selective|dense --rules N [--events M] [--seed S] [--write DIR] | --sizes N,N,...)
       [--reference] [--seconds S]`;

const DEFAULT_EVENT_COUNT = 10_000;
const DEFAULT_SEED = 1;
const DEFAULT_SECONDS = 2;
/** How long the warm-up of the reference matcher (and its check against the machine) runs at most. */
const REFERENCE_WARMUP_MS = 1000;

/** A problem with the command line or the input files: printed as a message, not a stack. */
class BenchInputError extends Error {}

interface Input {
  readonly label: Record<string, unknown>;
  readonly patterns: EventPattern[];
  readonly events: unknown[];
}

interface Options {
  readonly reference: boolean;
  readonly minMs: number;
}

function main(): void {
  const { values } = parseArguments();
  const options: Options = { reference: values.reference ?? false, minMs: positive(values.seconds ?? String(DEFAULT_SECONDS), "--seconds") * 1000 };
  const seed = values.seed === undefined ? DEFAULT_SEED : integer(values.seed, "--seed");

  if (values.sizes !== undefined) {
    if (values.patterns !== undefined || values.rules !== undefined || values.write !== undefined) {
      throw new BenchInputError("--sizes runs the selective workload at each size; it takes no --patterns, --rules or --write");
    }
    if (values.workload !== undefined && values.workload !== "selective") throw new BenchInputError("--sizes runs the selective workload only");
    const sizes = values.sizes.split(",").map((size) => integer(size.trim(), "--sizes"));
    const eventCount = values.events === undefined ? DEFAULT_EVENT_COUNT : integer(values.events, "--events");
    const rates: number[] = [];
    for (const size of sizes) {
      const result = run(generated("selective", size, eventCount, seed, undefined), options);
      rates.push(result.eventsPerSecond as number);
      console.log(JSON.stringify(result));
    }
    // The slowest size's time per event over the fastest one's: 1 means flat in the rule count.
    console.log(JSON.stringify({ sizes, eventsPerSecond: rates, slowestToFastest: round(Math.max(...rates) / Math.min(...rates), 2) }));
    return;
  }

  if (values.workload !== undefined) {
    if (values.patterns !== undefined) throw new BenchInputError("give either --workload or --patterns, not both");
    if (!(WORKLOADS as readonly string[]).includes(values.workload)) {
      throw new BenchInputError(`--workload must be one of ${WORKLOADS.join(", ")}, got ${JSON.stringify(values.workload)}`);
    }
    if (values.rules === undefined) throw new BenchInputError("--workload needs --rules N");
    const eventCount = values.events === undefined ? DEFAULT_EVENT_COUNT : integer(values.events, "--events");
    const input = generated(values.workload as WorkloadName, integer(values.rules, "--rules"), eventCount, seed, values.write);
    console.log(JSON.stringify(run(input, options)));
    return;
  }

  if (values.patterns === undefined || values.events === undefined) throw new BenchInputError(USAGE);
  if (values.rules !== undefined || values.write !== undefined) throw new BenchInputError("--rules and --write go with --workload");
  const patterns = readJsonLines(values.patterns).map(({ value, at }) => {
    try {
      return parseEventPattern(value);
    } catch (error) {
      throw new BenchInputError(`${at}: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  const events = readJsonLines(values.events).map(({ value }) => value);
  console.log(JSON.stringify(run({ label: {}, patterns, events }, options)));
}

function parseArguments() {
  try {
    return parseArgs({
      options: {
        patterns: { type: "string" },
        events: { type: "string" },
        workload: { type: "string" },
        rules: { type: "string" },
        seed: { type: "string" },
        write: { type: "string" },
        sizes: { type: "string" },
        reference: { type: "boolean" },
        seconds: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new BenchInputError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
}

function integer(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw new BenchInputError(`${flag} needs a whole number, got ${JSON.stringify(text)}`);
  return value;
}

function positive(text: string, flag: string): number {
  const value = Number(text);
  if (!(value > 0)) throw new BenchInputError(`${flag} needs a positive number, got ${JSON.stringify(text)}`);
  return value;
}

/** Non-blank lines of a JSON-lines file, parsed, with their `file:line` for messages. */
function readJsonLines(file: string): { value: unknown; at: string }[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new BenchInputError(`${file}: cannot read: ${error instanceof Error ? error.message : String(error)}`);
  }
  const out: { value: unknown; at: string }[] = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    const at = `${file}:${index + 1}`;
    try {
      out.push({ value: JSON.parse(line), at });
    } catch (error) {
      throw new BenchInputError(`${at}: not JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  return out;
}

function generated(workload: WorkloadName, rules: number, eventCount: number, seed: number, writeDir: string | undefined): Input {
  const { patterns, events } = generateWorkload(workload, rules, eventCount, seed);
  if (writeDir !== undefined) {
    mkdirSync(writeDir, { recursive: true });
    const lines = (values: readonly unknown[]): string => values.map((value) => `${JSON.stringify(value)}\n`).join("");
    writeFileSync(join(writeDir, "patterns.jsonl"), lines(patterns));
    writeFileSync(join(writeDir, "events.jsonl"), lines(events));
    console.error(`wrote ${join(writeDir, "patterns.jsonl")} and ${join(writeDir, "events.jsonl")}`);
  }
  // Both go through JSON, as a bus receives them (and as --patterns/--events files are read):
  // strings the generator built by concatenation are ropes in V8, which no parsed event holds.
  const parsed = (values: readonly unknown[]): unknown[] => values.map((value) => JSON.parse(JSON.stringify(value)) as unknown);
  return {
    label: { workload, seed },
    patterns: parsed(patterns).map((pattern) => parseEventPattern(pattern)),
    events: parsed(events),
  };
}

const collectGarbage: () => void = (() => {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === "function") return existing as () => void;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

/** The V8 heap in use and the memory of ArrayBuffers (typed arrays, kept outside that heap), after a full GC. */
function memoryAfterGc(): { heap: number; arrayBuffers: number } {
  collectGarbage();
  collectGarbage();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, arrayBuffers: usage.arrayBuffers };
}

const megabytes = (bytes: number): number => round(bytes / 2 ** 20, 1);

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function run(input: Input, options: Options): Record<string, unknown> {
  const { patterns, events } = input;
  if (events.length === 0) throw new BenchInputError("no events to match");
  const entries = patterns.map((pattern, key) => ({ key, pattern }));

  const before = memoryAfterGc();
  const buildStarted = performance.now();
  const machine = buildPatternMachine(entries);
  const buildMs = performance.now() - buildStarted;
  const after = memoryAfterGc();

  // One untimed pass over every event: the match counts, and the JIT's warm-up.
  let total = 0;
  let min = Infinity;
  let max = 0;
  for (const event of events) {
    const count = machine.match(event).length;
    total += count;
    if (count < min) min = count;
    if (count > max) max = count;
  }
  const eventsPerSecond = rate(events, (event) => machine.match(event).length, options.minMs);

  const result: Record<string, unknown> = {
    ...input.label,
    patterns: machine.size,
    events: events.length,
    eventsPerSecond: Math.round(eventsPerSecond),
    matchesPerEvent: round(total / events.length, 2),
    matchesMin: min,
    matchesMax: max,
    buildMs: round(buildMs, 1),
    heapUsedMB: megabytes(after.heap),
    arrayBuffersMB: megabytes(after.arrayBuffers),
    memoryMB: megabytes(after.heap + after.arrayBuffers),
    machineMB: megabytes(after.heap + after.arrayBuffers - before.heap - before.arrayBuffers),
  };

  if (options.reference) {
    const referenceMatch = (event: unknown): number[] => {
      const keys: number[] = [];
      for (let key = 0; key < patterns.length; key++) if (matchesEventPattern(patterns[key]!, event)) keys.push(key);
      return keys;
    };
    // The warm-up doubles as a check: the machine must find exactly the keys the reference finds.
    let checked = 0;
    const started = performance.now();
    while (checked < events.length && (checked < 10 || performance.now() - started < REFERENCE_WARMUP_MS)) {
      const event = events[checked]!;
      const expected = referenceMatch(event);
      const actual = machine.match(event);
      if (expected.join() !== actual.join()) {
        throw new Error(`event ${checked}: the machine matched [${actual.join()}], the reference [${expected.join()}]`);
      }
      checked++;
    }
    const referenceEventsPerSecond = rate(events, (event) => referenceMatch(event).length, options.minMs);
    result.referenceEventsPerSecond = round(referenceEventsPerSecond, referenceEventsPerSecond < 100 ? 1 : 0);
    result.speedup = round(eventsPerSecond / referenceEventsPerSecond, 1);
    result.referenceCheckedEvents = checked;
  }
  return result;
}

/**
 * Events per second of `match`, cycling through `events` (in their generated, random order)
 * for at least `minMs`. The clock is read once per batch; batches grow until one takes ~10 ms,
 * so reading it costs nothing measurable, however fast or slow one event is.
 */
function rate(events: readonly unknown[], match: (event: unknown) => number, minMs: number): number {
  let sink = 0;
  let next = 0;
  let batch = 1;
  let count = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    const batchStarted = performance.now();
    for (let i = 0; i < batch; i++) {
      sink += match(events[next]);
      next = next + 1 === events.length ? 0 : next + 1;
    }
    count += batch;
    const now = performance.now();
    if (now - batchStarted < 10) batch *= 2;
    elapsed = now - started;
  }
  if (sink < 0) console.log(sink); // keeps the results alive
  return (count / elapsed) * 1000;
}

try {
  main();
} catch (error) {
  if (!(error instanceof BenchInputError)) throw error;
  console.error(`bench:match: ${error.message}`);
  process.exitCode = 2;
}
