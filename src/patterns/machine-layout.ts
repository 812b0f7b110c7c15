/**
 * The pattern machine laid out for matching: the builder's trie of objects
 * (`machine-states.ts`) copied into one `Int32Array`, each state a record at its offset.
 *
 * With 100,000 rules the machine is far larger than the CPU caches, and matching an event is
 * a chain of reads each of which waits on memory: what costs is the number of distinct cache
 * lines a walk touches, not the instructions. The object trie spreads one state over a state
 * object, the `Map` of its strings (an object, its buckets, its entries), the key strings
 * and the next state, wherever the garbage collector put each. Here:
 *
 * - a state's record holds its terminals, its groups and its short string lists together;
 * - states are numbered in depth-first order, so the states below a rule's first, particular
 *   condition (its source, detail type and the rest) follow each other in memory, and a walk
 *   down them reads consecutive lines, which the CPU prefetches;
 * - an exact string is compared by its FNV hash first (the value's hash is computed once), so a
 *   string that differs costs no read of the key's characters;
 * - a group of many exact strings is a {@link StringTable}: one slot line, then the record the
 *   key leads to, with the key's code units laid out right before it (a hosted key), so that
 *   comparing the key reads the line the walk goes on to.
 *
 * - prefixes, suffixes, wildcards by a literal end and lower-cased values are string tables
 *   too, asked with the hash of the value's prefix (suffix) as it is read: no string is cut.
 *
 * Ranges and tested matchers keep their objects from the builder, with state offsets in
 * place of states ({@link LaidOutOtherWays}).
 *
 * A state's record, at offset `s` (`STATE_*`): seen mark (the only field matching writes),
 * first terminal entry or -1, group count and whether more terminals follow; then the list of
 * further terminals, if any (a count and its items); then the groups one after the other,
 * each only as long as its ways need (see {@link GROUP_PATH_UNIT}). A record holds nothing it
 * does not use: the fewer lines a state spans, the fewer a walk waits for, and the more of
 * the machine stays in cache. States with nothing but a terminal have no record at all
 * ({@link TERMINAL_ONLY}).
 *
 * @module
 */

import type { AffixIndex, FieldGroup, MachineState, OtherWays, TestedWay, WildcardWay } from "./machine-states.js";
import type { ValueTest } from "./value-tests.js";
import { hashText } from "./key-filter.js";
import type { RangeIndex } from "./range-index.js";
import { StringTable, type HostedKeys } from "./string-table.js";

export const STATE_SEEN = 0;
export const STATE_TERMINAL = 1;
/** Group count × 2, plus 1 when a list of further terminals follows the header. */
export const STATE_INFO = 2;
export const STATE_HEADER = 3;
export const HAS_MORE_TERMINALS = 1;

/**
 * A state with one terminal and nothing else (where most patterns end) gets no record: the
 * ways to it hold `TERMINAL_ONLY - entry` (below -1) instead of an offset, and a walk that
 * takes one reports the entry without reading anything more.
 */
export const TERMINAL_ONLY = -2;

/**
 * A group starts with one integer: its path id × `GROUP_PATH_UNIT`, plus how its exact
 * strings are kept (`STRINGS_*`, the low two bits), plus `OTHER_*` for its other ways, plus
 * `HAS_ABSENT` when an `exists: false` list ends it. What follows is only what those say:
 * the strings (`STRINGS_*`), the other ways (`OTHER_*`), the absent list (count, states).
 */
export const GROUP_PATH_UNIT = 32;
export const STRINGS_MASK = 3;
/** No exact string ways; nothing follows for them. */
export const STRINGS_NONE = 0;
/** One: its length, its index in `keys`, its next state. */
export const STRINGS_ONE = 1;
/** Up to {@link FEW_STRINGS}: a count, then (length, key index, next state) for each. */
export const STRINGS_FEW = 2;
/** More: the index of its {@link StringTable} in `tables`. */
export const STRINGS_TABLE = 3;
export const OTHER_MASK = 12;
/** No other ways; nothing follows for them. */
export const OTHER_NONE = 0;
/** The index of its {@link LaidOutOtherWays} in `others`. */
export const OTHER_INDEXED = 4;
/** Its few simple other ways, in the record (see {@link SMALL_WAY_SIZE}). */
export const OTHER_SMALL = 8;
export const HAS_ABSENT = 16;

/** Up to this many exact strings are kept in the record and compared in turn. */
const FEW_STRINGS = 4;

/**
 * A group whose other ways are few and simple (deep in the machine, a rule's own `prefix`,
 * numeric range, `exists: true` or `anything-but`) keeps them in the record too
 * ({@link OTHER_SMALL}): a count, then `SMALL_WAY_SIZE` integers per way: kind (`WAY_*`), A,
 * B, C, next state. A walk then reads no index objects for them, each of which is a few cache
 * lines far away.
 */
export const SMALL_WAY_SIZE = 5;
/** Ways at most in a group kept in the record. */
const SMALL_WAYS = 4;
/** A string starting with the key: A its index in `keys`, B its length. */
export const WAY_PREFIX = 1;
/** A string ending with the key: A, B as for a prefix. */
export const WAY_SUFFIX = 2;
/** A string equal to the key ignoring case: A the lower-cased key's index, B its hash. */
export const WAY_IGNORE_CASE = 3;
/** A comparable number in a range: C the index of its bounds in `numbers`, A its flags (`RANGE_*`). */
export const WAY_RANGE = 4;
export const RANGE_LOW_INCLUSIVE = 1;
export const RANGE_HIGH_INCLUSIVE = 2;
/** A number equal to `numbers[C]`. */
export const WAY_NUMBER = 5;
/** Any leaf (`exists: true`). */
export const WAY_PRESENT = 6;
export const WAY_TRUE = 7;
export const WAY_FALSE = 8;
export const WAY_NULL = 9;
/** A leaf `tests[A]` holds for. */
export const WAY_TESTED = 10;

export const WILDCARD_MIN_LENGTH = 0;
export const WILDCARD_NEXT = 1;
export const WILDCARD_SEGMENT_COUNT = 2;
export const WILDCARD_FIRST_LENGTH = 3;
export const WILDCARD_SEGMENTS = 4;

/** The laid-out machine. */
export interface MachineLayout {
  /** The state records; the root is at offset 0. */
  readonly code: Int32Array;
  /** Exact string keys, each once, by the index records hold. */
  readonly keys: readonly string[];
  readonly tables: readonly StringTable[];
  readonly others: readonly LaidOutOtherWays[];
  /** The small ways' tested matchers and numbers (see {@link OTHER_SMALL}). */
  readonly tests: readonly ValueTest[];
  readonly numbers: Float64Array;
}

/** Prefixes or suffixes in a {@link StringTable}, with their distinct lengths ascending. */
export interface LaidOutAffixes {
  readonly table: StringTable;
  readonly lengths: readonly number[];
}

/**
 * Wildcards found by a literal end: the table leads to an offset in `ways`, where a count of
 * ways is followed, for each, by its minimum length, its next state, its segment count, the
 * length of its first segment, and its segments' indices in `segments` (`WILDCARD_*`). A hit
 * reads those few integers together, where objects (a list, each way, its segments array)
 * cost a cache miss each at 100,000 rules; the segment it was found by is not read again.
 */
export interface LaidOutWildcards extends LaidOutAffixes {
  readonly ways: Int32Array;
  readonly segments: readonly string[];
}

/** A group's {@link OtherWays}, laid out: state offsets for states, tables for string indexes. */
export interface LaidOutOtherWays {
  readonly forStrings: boolean;
  readonly forNumbers: boolean;
  readonly onPresent: number | undefined;
  readonly tested: readonly TestedWay<number>[] | undefined;
  readonly numbers: ReadonlyMap<number, number> | undefined;
  readonly onTrue: number | undefined;
  readonly onFalse: number | undefined;
  readonly onNull: number | undefined;
  /** `equals-ignore-case`, by the lower-cased operand. */
  readonly ignoreCase: StringTable | undefined;
  readonly prefixes: LaidOutAffixes | undefined;
  readonly prefixesIgnoreCase: LaidOutAffixes | undefined;
  readonly suffixes: LaidOutAffixes | undefined;
  readonly suffixesIgnoreCase: LaidOutAffixes | undefined;
  readonly numericRanges: RangeIndex<number> | undefined;
  readonly ipv4Ranges: RangeIndex<number> | undefined;
  readonly wildcardsByPrefix: LaidOutWildcards | undefined;
  readonly wildcardsBySuffix: LaidOutWildcards | undefined;
  /** Whether the prefixes or suffixes ignoring case need the value lower-cased. */
  readonly needsLowered: boolean;
}

/** States laid out between yields of {@link layOutMachine}. */
const STATES_PER_SLICE = 4096;

/**
 * Lays out the trie below `root` (sealed by `StateBuilder.finish`). A generator, so that a
 * build aside can yield between slices; run it to its end (`drain`) to lay out at once.
 */
export function* layOutMachine(root: MachineState): Generator<void, MachineLayout> {
  // Depth-first order and each state's offset (or its terminal, for a terminal-only state).
  const order: MachineState[] = [];
  let size = 0;
  const stack: MachineState[] = [root];
  // The key a table reaches each state by, and where its code units go (see HostedKeys).
  const hostKeys = new Map<MachineState, string>();
  const hosted = new Map<number, { readonly key: string; readonly ahead: LookAheadString | undefined }>();
  while (stack.length > 0) {
    const state = stack.pop()!;
    if (state !== root && isTerminalOnly(state)) {
      state.id = TERMINAL_ONLY - state.terminal;
      continue;
    }
    const key = hostKeys.get(state);
    if (key !== undefined) {
      // The key's units end where the record starts (16-bit units, two to a word).
      size += (key.length + 1) >>> 1;
      hosted.set(size, { key, ahead: lookAheadString(state) });
    }
    state.id = size;
    order.push(state);
    size += recordSize(state);
    const children: MachineState[] = [];
    for (const group of groupsOf(state)) {
      addNextStates(group, children);
      addTableKeys(group, hostKeys);
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    if (order.length % STATES_PER_SLICE === 0) yield;
  }

  const code = new Int32Array(size);
  const codeUnits = new Uint16Array(code.buffer);
  for (const [id, { key }] of hosted) for (let i = 0; i < key.length; i++) codeUnits[2 * id - key.length + i] = key.charCodeAt(i);
  const keys: string[] = [];
  const keyIndex = new Map<string, number>();
  const keyOf = (key: string): number => {
    let index = keyIndex.get(key);
    if (index === undefined) {
      index = keys.length;
      keys.push(key);
      keyIndex.set(key, index);
    }
    return index;
  };
  const hostedKeys: HostedKeys = {
    units: codeUnits,
    hosts: (key, next) => hosted.get(next)?.key === key,
    lookAhead: (next) => {
      const ahead = hosted.get(next)?.ahead;
      return ahead === undefined ? undefined : { field: ahead.field, key: keyOf(ahead.text) };
    },
  };
  const tables: StringTable[] = [];
  const others: LaidOutOtherWays[] = [];
  const tests: ValueTest[] = [];
  const numbers: number[] = [];
  for (let n = 0; n < order.length; n++) {
    const state = order[n]!;
    let at = state.id;
    const groups = groupsOf(state);
    code[at + STATE_SEEN] = -1;
    code[at + STATE_TERMINAL] = state.terminal;
    code[at + STATE_INFO] = 2 * groups.length + (state.terminals === undefined ? 0 : HAS_MORE_TERMINALS);
    at += STATE_HEADER;
    if (state.terminals !== undefined) at = writeList(code, at, state.terminals);
    for (const group of groups) {
      const head = at++;
      let flags = 0;
      if (group.soleNext !== undefined) {
        flags |= STRINGS_ONE;
        code[at++] = group.sole.length;
        code[at++] = keyOf(group.sole);
        code[at++] = group.soleNext.id;
      } else if (group.strings !== undefined && group.strings.size <= FEW_STRINGS) {
        flags |= STRINGS_FEW;
        code[at++] = group.strings.size;
        for (const [key, next] of group.strings) {
          code[at++] = key.length;
          code[at++] = keyOf(key);
          code[at++] = next.id;
        }
      } else if (stringsInTable(group)) {
        flags |= STRINGS_TABLE;
        code[at++] = tables.length;
        tables.push(new StringTable(mapValues(group.strings, idOf), false, hostedKeys));
      }
      const small = group.other === undefined || smallWayCount(group.other) === undefined ? undefined : smallWays(group.other);
      if (small !== undefined) {
        flags |= OTHER_SMALL;
        code[at++] = small.length;
        for (const way of small) {
          const { kind, key, test, flags: rangeFlags, low, high } = way;
          code[at++] = kind;
          code[at++] = key !== undefined ? keyOf(key) : test !== undefined ? tests.push(test) - 1 : (rangeFlags ?? -1);
          code[at++] = key === undefined ? -1 : kind === WAY_IGNORE_CASE ? hashText(key) : key.length;
          code[at++] = low === undefined ? -1 : numbers.push(low, high ?? low) - 2;
          code[at++] = way.next.id;
        }
      } else if (group.other !== undefined) {
        flags |= OTHER_INDEXED;
        code[at++] = others.push(layOutOtherWays(group.other, hostedKeys)) - 1;
      }
      if (group.onAbsent !== undefined) {
        flags |= HAS_ABSENT;
        at = writeList(code, at, group.onAbsent.map(idOf));
      }
      code[head] = group.pathId * GROUP_PATH_UNIT + flags;
    }
    if (n % STATES_PER_SLICE === STATES_PER_SLICE - 1) yield;
  }
  return { code, keys, tables, others, tests, numbers: Float64Array.from(numbers) };
}

/** Runs a generator to its end and returns its value. */
export function drain<T>(steps: Generator<void, T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

function groupsOf(state: MachineState): FieldGroup[] {
  if (state.pathId < 0) return [];
  return state.more === undefined ? [state] : [state, ...state.more];
}

/** A state with one terminal, no further terminals and no groups: laid out as {@link TERMINAL_ONLY}. */
function isTerminalOnly(state: MachineState): boolean {
  return state.terminal >= 0 && state.terminals === undefined && groupsOf(state).length === 0;
}

function recordSize(state: MachineState): number {
  let size = STATE_HEADER;
  if (state.terminals !== undefined) size += 1 + state.terminals.length;
  for (const group of groupsOf(state)) {
    size += 1;
    if (group.soleNext !== undefined) size += 3;
    else if (group.strings !== undefined) size += group.strings.size <= FEW_STRINGS ? 1 + 3 * group.strings.size : 1;
    const small = group.other === undefined ? undefined : smallWayCount(group.other);
    if (small !== undefined) size += 1 + SMALL_WAY_SIZE * small;
    else if (group.other !== undefined) size += 1;
    if (group.onAbsent !== undefined) size += 1 + group.onAbsent.length;
  }
  return size;
}

function writeList(code: Int32Array, at: number, items: readonly number[]): number {
  code[at++] = items.length;
  for (const item of items) code[at++] = item;
  return at;
}

const idOf = (state: MachineState): number => state.id;

/** One way of a group kept in its record. */
interface SmallWay {
  readonly kind: number;
  readonly key?: string;
  readonly test?: ValueTest;
  readonly flags?: number;
  readonly low?: number;
  readonly high?: number;
  readonly next: MachineState;
}

/** Whether a group's exact strings are kept in a {@link StringTable} (more than {@link FEW_STRINGS}). */
function stringsInTable(group: FieldGroup): group is FieldGroup & { strings: Map<string, MachineState> } {
  return group.soleNext === undefined && group.strings !== undefined && group.strings.size > FEW_STRINGS;
}

/**
 * How many small ways `ways` makes when kept in the record, or undefined when they go to an
 * index instead (too many, or of a kind only an index serves).
 */
function smallWayCount(ways: OtherWays): number | undefined {
  if (ways.prefixesIgnoreCase !== undefined || ways.suffixesIgnoreCase !== undefined) return undefined;
  if (ways.ipv4Ranges !== undefined || ways.wildcardsByPrefix !== undefined || ways.wildcardsBySuffix !== undefined) return undefined;
  const count =
    (ways.prefixes?.ways.size ?? 0) +
    (ways.suffixes?.ways.size ?? 0) +
    (ways.ignoreCase?.size ?? 0) +
    (ways.numericRanges?.rangeCount ?? 0) +
    (ways.numbers?.size ?? 0) +
    (ways.tested?.length ?? 0) +
    [ways.onPresent, ways.onTrue, ways.onFalse, ways.onNull].filter((next) => next !== undefined).length;
  return count > SMALL_WAYS ? undefined : count;
}

/** `ways` as a list of small ways; only for ways {@link smallWayCount} keeps in the record. */
function smallWays(ways: OtherWays): SmallWay[] {
  const small: SmallWay[] = [];
  for (const [key, next] of ways.prefixes?.ways ?? []) small.push({ kind: WAY_PREFIX, key, next });
  for (const [key, next] of ways.suffixes?.ways ?? []) small.push({ kind: WAY_SUFFIX, key, next });
  for (const [key, next] of ways.ignoreCase ?? []) small.push({ kind: WAY_IGNORE_CASE, key, next });
  ways.numericRanges?.forEachRange((low, lowInclusive, high, highInclusive, next) => {
    const flags = (lowInclusive ? RANGE_LOW_INCLUSIVE : 0) | (highInclusive ? RANGE_HIGH_INCLUSIVE : 0);
    small.push({ kind: WAY_RANGE, flags, low, high, next });
  });
  for (const [value, next] of ways.numbers ?? []) small.push({ kind: WAY_NUMBER, low: value, next });
  for (const way of ways.tested ?? []) small.push({ kind: WAY_TESTED, test: way.test, next: way.next });
  if (ways.onPresent !== undefined) small.push({ kind: WAY_PRESENT, next: ways.onPresent });
  if (ways.onTrue !== undefined) small.push({ kind: WAY_TRUE, next: ways.onTrue });
  if (ways.onFalse !== undefined) small.push({ kind: WAY_FALSE, next: ways.onFalse });
  if (ways.onNull !== undefined) small.push({ kind: WAY_NULL, next: ways.onNull });
  return small;
}

/** The one exact string on one field a state needs before anything else (see `LookAhead`). */
interface LookAheadString {
  readonly field: number;
  readonly text: string;
}

/** The string `state` needs on one field before it can lead anywhere, or undefined when it has no such sole condition. */
function lookAheadString(state: MachineState): LookAheadString | undefined {
  if (state.terminal >= 0 || state.terminals !== undefined || state.more !== undefined) return undefined;
  if (state.soleNext === undefined || state.other !== undefined || state.onAbsent !== undefined) return undefined;
  return { field: state.pathId, text: state.sole };
}

/**
 * Notes, for each state a {@link StringTable} of `group` will lead to, the key that leads there
 * (the first, should two keys lead to one state): its code units are laid out before the
 * state's record.
 */
function addTableKeys(group: FieldGroup, hostKeys: Map<MachineState, string>): void {
  const note = (ways: ReadonlyMap<string, MachineState> | undefined): void => {
    if (ways !== undefined) for (const [key, next] of ways) if (!hostKeys.has(next)) hostKeys.set(next, key);
  };
  if (stringsInTable(group)) note(group.strings);
  const ways = group.other;
  if (ways === undefined || smallWayCount(ways) !== undefined) return;
  note(ways.ignoreCase);
  for (const index of [ways.prefixes, ways.prefixesIgnoreCase, ways.suffixes, ways.suffixesIgnoreCase]) note(index?.ways);
}

/** Every state one of `group`'s ways leads to, in the order they are laid out. */
function addNextStates(group: FieldGroup, out: MachineState[]): void {
  if (group.soleNext !== undefined) out.push(group.soleNext);
  if (group.strings !== undefined) for (const next of group.strings.values()) out.push(next);
  const ways = group.other;
  if (ways !== undefined) {
    for (const next of [ways.onPresent, ways.onTrue, ways.onFalse, ways.onNull]) if (next !== undefined) out.push(next);
    for (const way of ways.tested ?? []) out.push(way.next);
    for (const map of [ways.numbers, ways.ignoreCase]) if (map !== undefined) for (const next of map.values()) out.push(next);
    for (const index of [ways.prefixes, ways.prefixesIgnoreCase, ways.suffixes, ways.suffixesIgnoreCase]) {
      if (index !== undefined) for (const next of index.ways.values()) out.push(next);
    }
    for (const index of [ways.wildcardsByPrefix, ways.wildcardsBySuffix]) {
      if (index !== undefined) for (const list of index.ways.values()) for (const way of list) out.push(way.next);
    }
    for (const ranges of [ways.numericRanges, ways.ipv4Ranges]) if (ranges !== undefined) out.push(...ranges.nexts());
  }
  if (group.onAbsent !== undefined) out.push(...group.onAbsent);
}

function mapValues<K, A, B>(map: ReadonlyMap<K, A>, f: (value: A) => B): Map<K, B> {
  const out = new Map<K, B>();
  for (const [key, value] of map) out.set(key, f(value));
  return out;
}

function layOutAffixes(index: AffixIndex<MachineState> | undefined, backwards: boolean, hosted: HostedKeys): LaidOutAffixes | undefined {
  return index === undefined ? undefined : { table: new StringTable(mapValues(index.ways, idOf), backwards, hosted), lengths: index.lengths };
}

function layOutWildcards(index: AffixIndex<WildcardWay[]> | undefined, backwards: boolean): LaidOutWildcards | undefined {
  if (index === undefined) return undefined;
  const ways: number[] = [];
  const segments: string[] = [];
  const segmentIndex = new Map<string, number>();
  const segmentOf = (segment: string): number => {
    let at = segmentIndex.get(segment);
    if (at === undefined) segmentIndex.set(segment, (at = segments.push(segment) - 1));
    return at;
  };
  const offsets = mapValues(index.ways, (list) => {
    const offset = ways.length;
    ways.push(list.length);
    for (const way of list) {
      ways.push(way.minLength, way.next.id, way.segments.length, way.segments[0]!.length);
      for (const segment of way.segments) ways.push(segmentOf(segment));
    }
    return offset;
  });
  return { table: new StringTable(offsets, backwards), lengths: index.lengths, ways: Int32Array.from(ways), segments };
}

function layOutRanges(ranges: RangeIndex<MachineState> | undefined): RangeIndex<number> | undefined {
  if (ranges === undefined) return undefined;
  const laidOut = ranges.map(idOf);
  laidOut.seal();
  return laidOut;
}

function layOutOtherWays(ways: OtherWays, hosted: HostedKeys): LaidOutOtherWays {
  const id = (state: MachineState | undefined): number | undefined => state?.id;
  return {
    forStrings: ways.forStrings,
    forNumbers: ways.forNumbers,
    onPresent: id(ways.onPresent),
    tested: ways.tested?.map((way) => ({ test: way.test, next: way.next.id })),
    numbers: ways.numbers === undefined ? undefined : mapValues(ways.numbers, idOf),
    onTrue: id(ways.onTrue),
    onFalse: id(ways.onFalse),
    onNull: id(ways.onNull),
    ignoreCase: ways.ignoreCase === undefined ? undefined : new StringTable(mapValues(ways.ignoreCase, idOf), false, hosted),
    prefixes: layOutAffixes(ways.prefixes, false, hosted),
    prefixesIgnoreCase: layOutAffixes(ways.prefixesIgnoreCase, false, hosted),
    suffixes: layOutAffixes(ways.suffixes, true, hosted),
    suffixesIgnoreCase: layOutAffixes(ways.suffixesIgnoreCase, true, hosted),
    numericRanges: layOutRanges(ways.numericRanges),
    ipv4Ranges: layOutRanges(ways.ipv4Ranges),
    wildcardsByPrefix: layOutWildcards(ways.wildcardsByPrefix, false),
    wildcardsBySuffix: layOutWildcards(ways.wildcardsBySuffix, true),
    needsLowered: ways.prefixesIgnoreCase !== undefined || ways.suffixesIgnoreCase !== undefined,
  };
}
