/**
 * `buildPatternMachine`: every pattern of a bus compiled into one immutable matcher, so that
 * the cost of matching an event depends on the event, not on how many patterns there are
 * (the idea of aws/event-ruler, which EventBridge runs).
 *
 * Matching an event:
 *
 * 1. Its leaves are collected once, grouped by field path, keeping only the paths some
 *    pattern names (`event-leaves.ts`).
 * 2. The machine's trie (built by `machine-states.ts`, laid out for matching in one typed
 *    array by `machine-layout.ts`) is walked from its root. At each state, for each
 *    field path it has ways on for, each leaf of that path is looked up in the way's indexes
 *    (a hash for exact values, one hashed lookup per distinct length for prefixes and
 *    suffixes, a test for the rest), and every way that accepts the leaf is followed. A state
 *    where a pattern's alternative is complete reports that pattern.
 * 3. Arrays: a leaf inside arrays carries its trail of array elements; a walk keeps the union
 *    of the trails of the leaves it picked and only takes a leaf whose trail agrees with it,
 *    which is EventBridge's rule that fields under one array of objects come from one element.
 *    Events without such arrays (most) have no trails, and then a state reached twice is
 *    walked once.
 * 4. `exists: false` holds when its path has no leaf. When the path's leaves all sit in arrays,
 *    whether one falls in the slice of the event the other fields picked is a question about
 *    the whole alternative; the machine then hands that pattern to its own compiled matcher
 *    (`compile-pattern.ts`), which answers exactly. Rare, and the answer is the same.
 *
 * A walk is bounded: past a budget of steps proportional to the event's leaves (only a
 * hostile mix of large arrays and many conditions under them gets there), the machine stops
 * and asks every pattern's compiled matcher instead, which is linear in the patterns.
 *
 * The answer is always that of {@link matchesEventPattern} run on every pattern; the tests hold
 * the machine to it on every conformance case, a corpus, and random patterns and events.
 *
 * @module
 */

import { compileEventPattern, type CompiledPattern } from "./compile-pattern.js";
import { EventLeaves, type PathLeaves } from "./event-leaves.js";
import {
  drain,
  GROUP_PATH_UNIT,
  HAS_ABSENT,
  HAS_MORE_TERMINALS,
  layOutMachine,
  OTHER_INDEXED,
  OTHER_MASK,
  OTHER_SMALL,
  RANGE_HIGH_INCLUSIVE,
  RANGE_LOW_INCLUSIVE,
  SMALL_WAY_SIZE,
  STATE_HEADER,
  STATE_INFO,
  STATE_SEEN,
  STATE_TERMINAL,
  STRINGS_FEW,
  STRINGS_MASK,
  STRINGS_ONE,
  STRINGS_TABLE,
  TERMINAL_ONLY,
  WAY_FALSE,
  WAY_IGNORE_CASE,
  WAY_NULL,
  WAY_NUMBER,
  WAY_PREFIX,
  WAY_PRESENT,
  WAY_RANGE,
  WAY_SUFFIX,
  WAY_TRUE,
  type LaidOutAffixes,
  type LaidOutOtherWays,
  type LaidOutWildcards,
  type MachineLayout,
  WILDCARD_FIRST_LENGTH,
  WILDCARD_MIN_LENGTH,
  WILDCARD_NEXT,
  WILDCARD_SEGMENT_COUNT,
  WILDCARD_SEGMENTS,
} from "./machine-layout.js";
import { expandAlternative, matcherKey, StateBuilder } from "./machine-states.js";
import { parseIpAddress } from "./ip-address.js";
import { HASH_START, hashStep, hashText } from "./key-filter.js";
import { foundWildcardHolds } from "./wildcard.js";
import { isComparableNumber } from "./numeric.js";
import type { EventPattern } from "./pattern-types.js";
import type { RangeIndex } from "./range-index.js";
import { estimateStepFanOut, type StepFanOut } from "./step-fan-out.js";
import { NOT_FOUND, type LookAhead, type StringTable } from "./string-table.js";
import type { ValueTest } from "./value-tests.js";

/** Scratch for parsing an event's IP address; matching is synchronous, so never shared. */
const ipScratch = new Uint32Array(4);

/** One pattern to put in a machine, with the key `match` reports it by. */
export interface MachineEntry<K> {
  readonly key: K;
  readonly pattern: EventPattern;
}

/** All patterns of a bus, compiled together. Immutable: build a new one (aside) and swap to change. */
export interface PatternMachine<K> {
  /** How many entries the machine was built from. */
  readonly size: number;
  /** How many states its trie has: a measure of its size in memory. */
  readonly stateCount: number;
  /**
   * The keys of the entries whose pattern matches `event`, each once, in the order the entries
   * were given. Same answer as running {@link matchesEventPattern} on every pattern.
   */
  match(event: unknown): K[];
}

/** Steps a walk may take before the machine falls back to matching pattern by pattern. */
const BASE_STEP_BUDGET = 100_000;
const STEP_BUDGET_PER_LEAF = 64;

/** Builds a machine from checked patterns (from {@link parseEventPattern}), synchronously. */
export function buildPatternMachine<K>(entries: readonly MachineEntry<K>[]): PatternMachine<K> {
  const builder = new StateBuilder();
  const fanOut = stepFanOut(entries);
  for (let index = 0; index < entries.length; index++) addEntry(builder, entries[index]!.pattern, index, fanOut);
  const built = builder.finish();
  return new CompiledMachine(entries, built.paths, built.stateCount, drain(layOutMachine(built.root)));
}

/**
 * Builds a machine without holding the event loop for long: it adds patterns for at most
 * `sliceMs` at a time and yields between slices. Matching goes on meanwhile, on whatever
 * machine the caller still holds; the caller swaps when this resolves.
 */
export async function buildPatternMachineAside<K>(
  entries: readonly MachineEntry<K>[],
  options: { sliceMs?: number } = {},
): Promise<PatternMachine<K>> {
  const sliceMs = options.sliceMs ?? 10;
  const builder = new StateBuilder();
  const fanOut = stepFanOut(entries);
  let index = 0;
  while (index < entries.length) {
    const until = performance.now() + sliceMs;
    do {
      addEntry(builder, entries[index]!.pattern, index, fanOut);
      index++;
    } while (index < entries.length && (index % 64 !== 0 || performance.now() < until));
    if (index < entries.length) await yieldToEventLoop();
  }
  const built = builder.finish();
  const layout = layOutMachine(built.root);
  for (;;) {
    const until = performance.now() + sliceMs;
    let step = layout.next();
    while (step.done !== true && performance.now() < until) step = layout.next();
    if (step.done === true) return new CompiledMachine(entries, built.paths, built.stateCount, step.value);
    await yieldToEventLoop();
  }
}

const yieldToEventLoop = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

function stepFanOut<K>(entries: readonly MachineEntry<K>[]): StepFanOut {
  return estimateStepFanOut(entries.flatMap((entry) => entry.pattern.alternatives), matcherKey);
}

function addEntry(builder: StateBuilder, pattern: EventPattern, index: number, fanOut: StepFanOut): void {
  for (const alternative of pattern.alternatives) {
    for (const sequence of expandAlternative(alternative, fanOut)) builder.add(sequence, index);
  }
}

/**
 * The hash of `value` lower-cased (as `hashText` would give it), without making the
 * lower-cased string when `value` is ASCII, where lower-casing maps A-Z only.
 */
function lowerCasedHash(value: string): number {
  let hash = HASH_START;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0x80) return hashText(value.toLowerCase());
    hash = hashStep(hash, unit >= 0x41 && unit <= 0x5a ? unit + 0x20 : unit);
  }
  return hash;
}

/**
 * Sorts `items[0..count)` ascending in place: an insertion sort, since an event matches a few
 * patterns, and `Array.prototype.sort` allocates its work space on every call.
 */
function sortAscending(items: number[], count: number): void {
  for (let i = 1; i < count; i++) {
    const item = items[i]!;
    let j = i - 1;
    while (j >= 0 && items[j]! > item) {
      items[j + 1] = items[j]!;
      j--;
    }
    items[j + 1] = item;
  }
}

/** Up to this many matches of one event are kept apart without their marks in `matchedAt`. */
const SCANNED_MATCHES = 8;

/** Thrown inside a walk that ran out of steps; never escapes `match`. */
const OUT_OF_STEPS = Symbol("out of steps");

/**
 * Whether a walk's trail `held` and a leaf's trail agree (no array in different elements);
 * returns their union, or null when they do not agree.
 */
function joinTrails(held: readonly number[] | undefined, leaf: readonly number[]): readonly number[] | null {
  if (held === undefined) return leaf;
  let joined: number[] | undefined;
  for (let k = 0; k < leaf.length; k += 2) {
    const arrayId = leaf[k]!;
    let found = false;
    for (let j = 0; j < held.length; j += 2) {
      if (held[j] !== arrayId) continue;
      if (held[j + 1] !== leaf[k + 1]) return null;
      found = true;
      break;
    }
    if (!found) (joined ??= held.slice()).push(arrayId, leaf[k + 1]!);
  }
  return joined ?? held;
}

class CompiledMachine<K> implements PatternMachine<K>, LookAhead {
  readonly size: number;
  readonly stateCount: number;
  private readonly entries: readonly MachineEntry<K>[];
  /** The entries' keys by entry: a match reads one array slot, not an entry object as well. */
  private readonly entryKeys: readonly K[];
  private readonly code: Int32Array;
  private readonly keys: readonly string[];
  private readonly tables: readonly StringTable[];
  private readonly others: readonly LaidOutOtherWays[];
  private readonly tests: readonly ValueTest[];
  private readonly numbers: Float64Array;
  private readonly leaves: EventLeaves;
  private readonly byPath: readonly PathLeaves[];
  /** Each pattern's own compiled matcher, made when first needed. */
  private readonly verifiers: (CompiledPattern | undefined)[];
  // Per-call scratch, reused: matching is synchronous and never re-entered.
  private epoch = 0;
  private readonly matchedAt: number[];
  private readonly verifyAt: number[];
  // Arrays used as stacks keep their length and count with a number of their own: setting an
  // array's length to 0 drops its storage, and every event would then allocate it again.
  private readonly matched: number[] = [];
  private matchedCount = 0;
  private readonly toVerify: number[] = [];
  private toVerifyCount = 0;
  private steps = 0;
  private stepBudget = 0;
  /** States found by range searches, above `rangeHitsTop` free. */
  private readonly rangeHits: number[] = [];
  private rangeHitsTop = 0;

  constructor(entries: readonly MachineEntry<K>[], paths: readonly string[], stateCount: number, layout: MachineLayout) {
    this.entries = entries;
    this.entryKeys = entries.map((entry) => entry.key);
    this.size = entries.length;
    this.stateCount = stateCount;
    this.code = layout.code;
    this.keys = layout.keys;
    this.tables = layout.tables;
    this.others = layout.others;
    this.tests = layout.tests;
    this.numbers = layout.numbers;
    this.leaves = new EventLeaves(paths);
    this.byPath = this.leaves.byPath;
    this.verifiers = new Array<CompiledPattern | undefined>(entries.length).fill(undefined);
    this.matchedAt = new Array<number>(entries.length).fill(-1);
    this.verifyAt = new Array<number>(entries.length).fill(-1);
  }

  match(event: unknown): K[] {
    const leaves = this.leaves;
    leaves.collect(event);
    this.epoch = leaves.epoch;
    this.matchedCount = 0;
    this.toVerifyCount = 0;
    this.steps = 0;
    this.rangeHitsTop = 0;
    this.stepBudget = BASE_STEP_BUDGET + STEP_BUDGET_PER_LEAF * leaves.leafCount;
    try {
      this.visit(0, undefined, false);
    } catch (error) {
      if (error !== OUT_OF_STEPS) throw error;
      return this.matchOneByOne(event);
    }
    for (let i = 0; i < this.toVerifyCount; i++) {
      const entry = this.toVerify[i]!;
      if (!this.isMatched(entry) && this.verifier(entry).matches(event)) this.addMatch(entry);
    }
    const matched = this.matched;
    const count = this.matchedCount;
    if (count === 0) return [];
    sortAscending(matched, count);
    const keys = new Array<K>(count);
    for (let i = 0; i < count; i++) keys[i] = this.entryKeys[matched[i]!]!;
    return keys;
  }

  /** Whether this event has a leaf at path `field` equal to `keys[key]` (a table's look-ahead, `string-table.ts`). */
  mayHold(field: number, key: number): boolean {
    const leaves = this.byPath[field]!;
    if (leaves.epoch !== this.epoch) return false;
    const wanted = this.keys[key];
    for (let i = 0; i < leaves.count; i++) if (leaves.values[i] === wanted) return true;
    return false;
  }

  private verifier(entry: number): CompiledPattern {
    return (this.verifiers[entry] ??= compileEventPattern(this.entries[entry]!.pattern));
  }

  private matchOneByOne(event: unknown): K[] {
    const keys: K[] = [];
    for (let entry = 0; entry < this.entries.length; entry++) {
      if (this.verifier(entry).matches(event)) keys.push(this.entries[entry]!.key);
    }
    return keys;
  }

  /**
   * Walks on from the state at offset `state` (`machine-layout.ts`), or reports the entry of a
   * terminal-only state. `trail` is the union of the picked leaves' trails (undefined when none
   * sat in a shared array); `verify` is set once an `exists: false` was passed whose answer
   * depends on the whole alternative.
   */
  private visit(state: number, trail: readonly number[] | undefined, verify: boolean): void {
    if (state < 0) {
      this.reached(TERMINAL_ONLY - state, verify);
      return;
    }
    const code = this.code;
    if (trail === undefined && !verify) {
      if (code[state + STATE_SEEN] === this.epoch) return;
      code[state + STATE_SEEN] = this.epoch;
    }
    if (++this.steps > this.stepBudget) throw OUT_OF_STEPS;
    const terminal = code[state + STATE_TERMINAL]!;
    if (terminal >= 0) this.reached(terminal, verify);
    const info = code[state + STATE_INFO]!;
    let at = state + STATE_HEADER;
    if ((info & HAS_MORE_TERMINALS) !== 0) {
      const end = at + 1 + code[at]!;
      for (let i = at + 1; i < end; i++) this.reached(code[i]!, verify);
      at = end;
    }
    for (let groups = info >>> 1; groups > 0; groups--) at = this.walkGroup(at, trail, verify);
  }

  /**
   * Takes every way of the group at offset `group` that one of its path's leaves (or their
   * absence) allows; returns the offset after the group.
   */
  private walkGroup(group: number, trail: readonly number[] | undefined, verify: boolean): number {
    const code = this.code;
    const head = code[group]!;
    // Where the group's parts start, and where it ends (machine-layout.ts).
    const strings = head & STRINGS_MASK;
    const stringsAt = group + 1;
    const otherAt =
      stringsAt + (strings === STRINGS_ONE ? 3 : strings === STRINGS_FEW ? 1 + 3 * code[stringsAt]! : strings === STRINGS_TABLE ? 1 : 0);
    const other = head & OTHER_MASK;
    const absentAt = otherAt + (other === OTHER_INDEXED ? 1 : other === OTHER_SMALL ? 1 + SMALL_WAY_SIZE * code[otherAt]! : 0);
    const absent = (head & HAS_ABSENT) !== 0;
    const end = absent ? absentAt + 1 + code[absentAt]! : absentAt;
    const leaves = this.byPath[(head - (head & (GROUP_PATH_UNIT - 1))) / GROUP_PATH_UNIT]!;
    if (leaves.epoch !== this.epoch || leaves.count === 0) {
      if (absent) for (let i = absentAt + 1; i < end; i++) this.visit(code[i]!, trail, verify);
      return end;
    }
    for (let i = 0; i < leaves.count; i++) {
      const leafTrail = leaves.trails[i];
      let joined = trail;
      if (leafTrail !== undefined) {
        const both = joinTrails(trail, leafTrail);
        if (both === null) continue;
        joined = both;
      }
      this.step(strings, stringsAt, other, otherAt, leaves.values[i], joined, verify);
    }
    // Leaves only inside arrays: absence may hold in the slice the rest picks; verify.
    if (absent && leaves.free === 0) for (let i = absentAt + 1; i < end; i++) this.visit(code[i]!, trail, true);
    return end;
  }

  /** Follows every way of a group (its exact strings at `stringsAt`, other ways at `otherAt`) that accepts `value`. */
  private step(
    strings: number,
    stringsAt: number,
    other: number,
    otherAt: number,
    value: unknown,
    trail: readonly number[] | undefined,
    verify: boolean,
  ): void {
    const code = this.code;
    if (typeof value === "string" && strings !== 0) {
      // A few keys are told apart by length, then compared; a table by hash.
      if (strings === STRINGS_ONE) {
        if (code[stringsAt] === value.length && this.keys[code[stringsAt + 1]!] === value) this.visit(code[stringsAt + 2]!, trail, verify);
      } else if (strings === STRINGS_FEW) {
        for (let at = stringsAt + 1, end = at + 3 * code[stringsAt]!; at < end; at += 3) {
          if (code[at] === value.length && this.keys[code[at + 1]!] === value) {
            this.visit(code[at + 2]!, trail, verify);
            break;
          }
        }
      } else {
        const next = this.tables[code[stringsAt]!]!.get(value, hashText(value), this);
        if (next !== NOT_FOUND) this.visit(next, trail, verify);
      }
    }
    if (other === OTHER_INDEXED) this.stepOther(this.others[code[otherAt]!]!, value, trail, verify);
    else if (other === OTHER_SMALL) this.stepSmall(otherAt, value, trail, verify);
  }

  /** Follows every small way (kept in the record, at offset `at`) that accepts `value`. */
  private stepSmall(at: number, value: unknown, trail: readonly number[] | undefined, verify: boolean): void {
    const code = this.code;
    for (let way = at + 1, end = way + SMALL_WAY_SIZE * code[at]!; way < end; way += SMALL_WAY_SIZE) {
      const a = code[way + 1]!;
      let holds = false;
      switch (code[way]) {
        case WAY_PREFIX:
          holds = typeof value === "string" && value.length >= code[way + 2]! && value.startsWith(this.keys[a]!);
          break;
        case WAY_SUFFIX:
          holds = typeof value === "string" && value.length >= code[way + 2]! && value.endsWith(this.keys[a]!);
          break;
        case WAY_IGNORE_CASE:
          holds = typeof value === "string" && lowerCasedHash(value) === code[way + 2] && value.toLowerCase() === this.keys[a];
          break;
        case WAY_RANGE: {
          if (typeof value !== "number" || !isComparableNumber(value)) break;
          const low = this.numbers[code[way + 3]!]!;
          const high = this.numbers[code[way + 3]! + 1]!;
          holds =
            ((a & RANGE_LOW_INCLUSIVE) !== 0 ? low <= value : low < value) &&
            ((a & RANGE_HIGH_INCLUSIVE) !== 0 ? value <= high : value < high);
          break;
        }
        case WAY_NUMBER:
          holds = value === this.numbers[code[way + 3]!];
          break;
        case WAY_PRESENT:
          holds = true;
          break;
        case WAY_TRUE:
          holds = value === true;
          break;
        case WAY_FALSE:
          holds = value === false;
          break;
        case WAY_NULL:
          holds = value === null;
          break;
        default:
          holds = this.tests[a]!(value);
      }
      if (holds) this.visit(code[way + 4]!, trail, verify);
    }
  }

  private stepOther(ways: LaidOutOtherWays, value: unknown, trail: readonly number[] | undefined, verify: boolean): void {
    let next: number | undefined;
    if (typeof value === "string") {
      if (ways.forStrings) this.stepString(ways, value, trail, verify);
    } else if (typeof value === "number") {
      if (ways.forNumbers) {
        if (ways.numbers !== undefined && (next = ways.numbers.get(value)) !== undefined) this.visit(next, trail, verify);
        if (ways.numericRanges !== undefined && isComparableNumber(value)) this.ranges(ways.numericRanges, value, trail, verify);
      }
    } else if (value === true) {
      if (ways.onTrue !== undefined) this.visit(ways.onTrue, trail, verify);
    } else if (value === false) {
      if (ways.onFalse !== undefined) this.visit(ways.onFalse, trail, verify);
    } else if (value === null) {
      if (ways.onNull !== undefined) this.visit(ways.onNull, trail, verify);
    }
    if (ways.onPresent !== undefined) this.visit(ways.onPresent, trail, verify);
    const tested = ways.tested;
    if (tested !== undefined) {
      for (let t = 0; t < tested.length; t++) {
        const way = tested[t]!;
        if (way.test(value)) this.visit(way.next, trail, verify);
      }
    }
  }

  /** The indexed ways a string can take: affixes, lower-cased values, IPv4 blocks, wildcards. */
  private stepString(ways: LaidOutOtherWays, value: string, trail: readonly number[] | undefined, verify: boolean): void {
    if (ways.prefixes !== undefined) this.affixes(ways.prefixes, undefined, value, true, trail, verify);
    if (ways.suffixes !== undefined) this.affixes(ways.suffixes, undefined, value, false, trail, verify);
    if (ways.ignoreCase !== undefined) {
      const next = ways.ignoreCase.getLowerCased(value, lowerCasedHash(value), this);
      if (next !== NOT_FOUND) this.visit(next, trail, verify);
    }
    if (ways.needsLowered) {
      const lower = value.toLowerCase();
      if (ways.prefixesIgnoreCase !== undefined) this.affixes(ways.prefixesIgnoreCase, undefined, lower, true, trail, verify);
      if (ways.suffixesIgnoreCase !== undefined) this.affixes(ways.suffixesIgnoreCase, undefined, lower, false, trail, verify);
    }
    if (ways.ipv4Ranges !== undefined && parseIpAddress(value, ipScratch) === 4) this.ranges(ways.ipv4Ranges, ipScratch[0]!, trail, verify);
    const byPrefix = ways.wildcardsByPrefix;
    if (byPrefix !== undefined) this.affixes(byPrefix, byPrefix, value, true, trail, verify);
    const bySuffix = ways.wildcardsBySuffix;
    if (bySuffix !== undefined) this.affixes(bySuffix, bySuffix, value, false, trail, verify);
  }

  private ranges(index: RangeIndex<number>, value: number, trail: readonly number[] | undefined, verify: boolean): void {
    // Found states go on a shared stack; walks they start push above them.
    const found = this.rangeHits;
    const start = this.rangeHitsTop;
    const end = index.search(value, found, start);
    this.rangeHitsTop = end;
    for (let i = start; i < end; i++) this.visit(found[i]!, trail, verify);
    this.rangeHitsTop = start;
  }

  /**
   * Looks `value`'s prefixes (or suffixes) of each distinct length up in `index`, hashing the
   * value as it is read: a prefix or suffix way leads on at once; wildcards (`wildcards` given),
   * found by their first (or last) literal segment, are then tested whole.
   */
  private affixes(
    index: LaidOutAffixes,
    wildcards: LaidOutWildcards | undefined,
    value: string,
    prefix: boolean,
    trail: readonly number[] | undefined,
    verify: boolean,
  ): void {
    const { lengths, table } = index;
    const length = value.length;
    let hash = HASH_START;
    let hashed = 0;
    for (let i = 0; i < lengths.length; i++) {
      const size = lengths[i]!;
      if (size > length) break;
      if (prefix) while (hashed < size) hash = hashStep(hash, value.charCodeAt(hashed++));
      else while (hashed < size) hash = hashStep(hash, value.charCodeAt(length - 1 - hashed++));
      // A wildcard index's table hosts no keys, so it never asks the look-ahead.
      const found = table.getAffix(value, size, hash, prefix, this);
      if (found === NOT_FOUND) continue;
      if (wildcards === undefined) this.visit(found, trail, verify);
      else this.wildcards(wildcards, found, value, prefix, trail, verify);
    }
  }

  /** Tests whole the wildcards at offset `at` of `index`, found by their first (`byFirst`) or last segment. */
  private wildcards(
    index: LaidOutWildcards,
    at: number,
    value: string,
    byFirst: boolean,
    trail: readonly number[] | undefined,
    verify: boolean,
  ): void {
    const { ways, segments } = index;
    let way = at + 1;
    for (let n = ways[at]!; n > 0; n--) {
      const count = ways[way + WILDCARD_SEGMENT_COUNT]!;
      const first = way + WILDCARD_SEGMENTS;
      if (
        value.length >= ways[way + WILDCARD_MIN_LENGTH]! &&
        foundWildcardHolds(value, segments, ways, first, count, ways[way + WILDCARD_FIRST_LENGTH]!, byFirst)
      ) {
        this.visit(ways[way + WILDCARD_NEXT]!, trail, verify);
      }
      way = first + count;
    }
  }

  private reached(entry: number, verify: boolean): void {
    if (!verify) this.addMatch(entry);
    else if (this.verifyAt[entry] !== this.epoch && !this.isMatched(entry)) {
      this.verifyAt[entry] = this.epoch;
      this.toVerify[this.toVerifyCount++] = entry;
    }
  }

  /**
   * Adds `entry` to this event's matches unless it is there. A few matches are told apart by
   * a scan of their list, which stays in cache; past {@link SCANNED_MATCHES}, by each entry's
   * mark in `matchedAt`, an array as long as the entries where every read is a likely miss at
   * 100,000 rules.
   */
  private addMatch(entry: number): void {
    const count = this.matchedCount;
    const matched = this.matched;
    if (count < SCANNED_MATCHES) {
      for (let i = 0; i < count; i++) if (matched[i] === entry) return;
      matched[this.matchedCount++] = entry;
      // From here on the marks tell: set them for the list so far.
      if (count + 1 === SCANNED_MATCHES) for (let i = 0; i <= count; i++) this.matchedAt[matched[i]!] = this.epoch;
    } else if (this.matchedAt[entry] !== this.epoch) {
      this.matchedAt[entry] = this.epoch;
      matched[this.matchedCount++] = entry;
    }
  }

  private isMatched(entry: number): boolean {
    const count = this.matchedCount;
    if (count >= SCANNED_MATCHES) return this.matchedAt[entry] === this.epoch;
    const matched = this.matched;
    for (let i = 0; i < count; i++) if (matched[i] === entry) return true;
    return false;
  }
}
