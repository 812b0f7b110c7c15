/**
 * The states of the pattern machine and how patterns are added to them.
 *
 * Every alternative of every pattern (one per `$or` combination) becomes a path through a
 * trie of states. Each step of the path is one *condition*: a field path and one value
 * matcher. A field whose pattern lists several values (`"source": ["a", "b"]`) is expanded
 * into one path per value, since a field holds when any of its values does: the trie then
 * shares every step two patterns have in common, and one hashed lookup of the event's value
 * finds the only step that can follow, however many patterns there are.
 *
 * The steps of a path are ordered so that the cheap, selective ones come first: conditions an
 * index serves (a hashed value; prefixes, suffixes and wildcards by one lookup per distinct
 * length; numeric ranges and IPv4 blocks by a range search), then `exists: true`, then the
 * matchers that must be tried one by one (anything-but, regex, ...) and last `exists: false`.
 * Among indexed conditions, the narrowest by estimated fan-out comes first (`step-fan-out.ts`):
 * a pattern's most particular condition (a tenant id, say, rather than the `source` thousands
 * of patterns share) is its first step, so the first lookups narrow an event to the few
 * patterns it can match, and the work per event stays about the same whether a bus has a
 * hundred rules or a hundred thousand. Equally narrow steps go by path and matcher, so
 * identical leading conditions share their states. By the time the one-by-one
 * matchers run, the hashed steps have usually narrowed an event to a handful of patterns.
 *
 * A state, once the machine is built, is never changed: a new rule set builds a new machine.
 *
 * @module
 */

import type { FieldCondition, PatternAlternative, ValueMatcher } from "./pattern-types.js";
import { RangeIndex } from "./range-index.js";
import { stepKey, type StepFanOut } from "./step-fan-out.js";
import { compileValueTest, type ValueTest } from "./value-tests.js";
import { wildcardMinLength } from "./wildcard.js";

/**
 * One state: the patterns whose alternative is complete here, and the ways on, one group per
 * field path. Deep in the trie nearly every state has a single group, so a state *is* its
 * first group (its `pathId` is -1 while it has none) and keeps any others in `more`. This is
 * the builder's form; matching walks the same trie laid out in a typed array
 * (`machine-layout.ts`).
 */
export interface MachineState extends FieldGroup {
  /** The first entry index whose alternative ends at this state, or -1: most states have none or one. */
  terminal: number;
  /** Entry indices after `terminal` whose alternative ends here, ascending, each once. */
  terminals: number[] | undefined;
  /** The groups after the first, on other field paths. */
  more: FieldGroup[] | undefined;
  /** Its offset in the laid-out machine (`machine-layout.ts`), once laid out; -1 before. */
  id: number;
}

/**
 * The conditions on one field path that lead on from one state, indexed by matcher kind. Kept
 * small, because matching an event touches a few of them scattered over memory: a group of
 * exact strings (the commonest, and deep in the trie usually a single one) is this object
 * alone; the other kinds live in `other`.
 */
export interface FieldGroup {
  /** The field path's id; -1 on a state that has no group yet (or none at all). */
  pathId: number;
  /** The group's exact string way when it has exactly one; `soleNext` undefined otherwise. */
  sole: string;
  soleNext: MachineState | undefined;
  /** Exact string ways (that are not IP addresses), when more than one. */
  strings: Map<string, MachineState> | undefined;
  /** `exists: false` (alone, or in a field kept whole): no leaf in the slice of the event the other conditions picked. */
  onAbsent: MachineState[] | undefined;
  /** Every other kind of way. */
  other: OtherWays | undefined;
}

/** A group's ways other than exact strings and absence (laid out for matching as `LaidOutOtherWays`). */
export interface OtherWays {
  /**
   * Which kinds of value have ways here (set when the group is sealed), read first so that a
   * step skips the kinds it has none of without reading the rest of this object.
   */
  forStrings: boolean;
  forNumbers: boolean;
  /** `exists: true`: any leaf. */
  onPresent: MachineState | undefined;
  /** Matchers tried one by one: the kinds no index serves. */
  tested: TestedWay<MachineState>[] | undefined;
  /** Exact numbers; `300` and `300.0` are one key. */
  numbers: Map<number, MachineState> | undefined;
  onTrue: MachineState | undefined;
  onFalse: MachineState | undefined;
  onNull: MachineState | undefined;
  /** `equals-ignore-case`, keyed by the lower-cased operand. */
  ignoreCase: Map<string, MachineState> | undefined;
  /** `prefix`, by operand; the ignore-case ones by the lower-cased operand. */
  prefixes: AffixIndex<MachineState> | undefined;
  prefixesIgnoreCase: AffixIndex<MachineState> | undefined;
  /** `suffix`, likewise. */
  suffixes: AffixIndex<MachineState> | undefined;
  suffixesIgnoreCase: AffixIndex<MachineState> | undefined;
  /** `numeric` ranges, searched by the event's number. Sealed when laid out. */
  numericRanges: RangeIndex<MachineState> | undefined;
  /** IPv4 `cidr` blocks and IPv4 literals, searched by the event's address. Sealed when laid out. */
  ipv4Ranges: RangeIndex<MachineState> | undefined;
  /** `wildcard`s found by their first literal segment (a prefix), then tested whole. */
  wildcardsByPrefix: AffixIndex<WildcardWay<MachineState>[]> | undefined;
  /** `wildcard`s starting with `*`, found by their last literal segment (a suffix), then tested whole. */
  wildcardsBySuffix: AffixIndex<WildcardWay<MachineState>[]> | undefined;
  /** Whether any string-keyed index here needs the value lower-cased. */
  needsLowered: boolean;
}

/**
 * Ways found by a value's prefix (or suffix): keyed by the operand, with the operands'
 * distinct lengths in ascending order, so that a lookup slices the value once per length.
 */
export interface AffixIndex<T> {
  readonly ways: Map<string, T>;
  readonly lengths: number[];
}

/** A wildcard way found by its first or last segment, then tested whole (`wildcardHolds`). */
export interface WildcardWay<S = MachineState> {
  /** The wildcard's literal segments (a `*` between each), as `wildcardHolds` takes them. */
  readonly segments: readonly string[];
  readonly minLength: number;
  readonly next: S;
}

export interface TestedWay<S = MachineState> {
  readonly test: ValueTest;
  readonly next: S;
}

/** A condition the machine steps on: one path and one matcher (or, rarely, several kept together). */
export interface MachineStep {
  readonly path: string;
  /** The matchers; one, unless a field was left unexpanded (see {@link expandAlternative}). */
  readonly matchers: readonly ValueMatcher[];
  /** Orders steps: cheap and selective first. */
  readonly rank: number;
  /** Identifies the condition: equal keys on one path are the same step. */
  readonly key: string;
  /** Its estimated fan-out (`step-fan-out.ts`): among equal ranks, the smaller goes first. */
  readonly fanOut: number;
}

/**
 * How many single-matcher paths one alternative may expand into. Past it, the fields with the
 * most values stay whole (one step tried with all their matchers), which is as correct and only
 * less shared.
 */
export const MAX_PATHS_PER_ALTERNATIVE = 256;

/**
 * Found through an index: a hash of the value, one lookup per distinct length (prefixes,
 * suffixes, wildcards by a literal end) or a range search (numbers, IPv4). Ordered among
 * themselves by their estimated fan-out (`step-fan-out.ts`).
 */
const RANK_INDEXED = 0;
const RANK_PRESENT = 1;
const RANK_TESTED = 2;
const RANK_ABSENT = 3;

function rankOf(matcher: ValueMatcher): number {
  switch (matcher.kind) {
    case "exact":
      return matcher.ip === undefined || matcher.ip.family === 4 ? RANK_INDEXED : RANK_TESTED;
    case "cidr":
      return matcher.range.family === 4 ? RANK_INDEXED : RANK_TESTED;
    case "wildcard":
      return matcher.segments[0] !== "" || matcher.segments[matcher.segments.length - 1] !== "" ? RANK_INDEXED : RANK_TESTED;
    case "equals-ignore-case":
    case "prefix":
    case "suffix":
    case "numeric":
      return RANK_INDEXED;
    case "exists":
      return matcher.exists ? RANK_PRESENT : RANK_ABSENT;
    default:
      return RANK_TESTED;
  }
}

/** JSON with bigints (IP ranges) as strings: a stable key for a matcher. */
export function matcherKey(matcher: ValueMatcher): string {
  return JSON.stringify(matcher, (_name, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
}

function singleStep(path: string, matcher: ValueMatcher, fanOut: StepFanOut): MachineStep {
  const key = matcherKey(matcher);
  return { path, matchers: [matcher], rank: rankOf(matcher), key, fanOut: fanOut.get(stepKey(path, key)) ?? 0 };
}

function wholeStep(condition: FieldCondition): MachineStep {
  const keys = condition.matchers.map(matcherKey).sort();
  return { path: condition.path, matchers: condition.matchers, rank: RANK_TESTED, key: `[${keys.join(",")}]`, fanOut: 0 };
}

function compareSteps(a: MachineStep, b: MachineStep): number {
  if (a.rank !== b.rank) return a.rank - b.rank;
  if (a.fanOut !== b.fanOut) return a.fanOut - b.fanOut;
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * The step sequences an alternative stands for: one per choice of one matcher in each field,
 * each sorted cheap-first. A field holds when any of its matchers does, so the alternative
 * holds exactly when one of these sequences does.
 */
export function expandAlternative(alternative: PatternAlternative, fanOut: StepFanOut): MachineStep[][] {
  // Decide which fields to expand: the ones with fewest matchers first, while the product fits.
  const order = alternative.map((condition, index) => index).sort(
    (a, b) => alternative[a]!.matchers.length - alternative[b]!.matchers.length,
  );
  const expand = new Set<number>();
  let product = 1;
  for (const index of order) {
    const count = alternative[index]!.matchers.length;
    if (product * count > MAX_PATHS_PER_ALTERNATIVE) continue;
    product *= count;
    expand.add(index);
  }
  let sequences: MachineStep[][] = [[]];
  alternative.forEach((condition, index) => {
    if (!expand.has(index)) {
      const step = wholeStep(condition);
      for (const sequence of sequences) sequence.push(step);
      return;
    }
    const next: MachineStep[][] = [];
    // Duplicate matchers (`["a", "a"]`) would give duplicate sequences.
    const seen = new Set<string>();
    for (const matcher of condition.matchers) {
      const step = singleStep(condition.path, matcher, fanOut);
      if (seen.has(step.key)) continue;
      seen.add(step.key);
      for (const sequence of sequences) next.push([...sequence, step]);
    }
    sequences = next;
  });
  for (const sequence of sequences) sequence.sort(compareSteps);
  return sequences;
}

export function newState(): MachineState {
  return {
    id: -1,
    terminal: -1,
    pathId: -1,
    sole: "",
    soleNext: undefined,
    strings: undefined,
    onAbsent: undefined,
    other: undefined,
    terminals: undefined,
    more: undefined,
  };
}

function newGroup(pathId: number): FieldGroup {
  return { pathId, sole: "", soleNext: undefined, strings: undefined, onAbsent: undefined, other: undefined };
}

function otherWays(group: FieldGroup): OtherWays {
  return (group.other ??= {
    forStrings: false,
    forNumbers: false,
    onPresent: undefined,
    tested: undefined,
    numbers: undefined,
    onTrue: undefined,
    onFalse: undefined,
    onNull: undefined,
    ignoreCase: undefined,
    prefixes: undefined,
    prefixesIgnoreCase: undefined,
    suffixes: undefined,
    suffixesIgnoreCase: undefined,
    numericRanges: undefined,
    ipv4Ranges: undefined,
    wildcardsByPrefix: undefined,
    wildcardsBySuffix: undefined,
    needsLowered: false,
  });
}

/**
 * One flat string object per distinct value, for every key the machine compares an event's
 * value with: thousands of patterns naming the same `source` or `detail-type` then compare
 * with one string that stays in the CPU caches, instead of each with its own copy somewhere in
 * memory. And a string built by concatenation (a pattern made in code, a wildcard's segment)
 * is a rope of pieces in V8, which every comparison and hash walks again; a copy through
 * `JSON.parse` is one contiguous string.
 */
function shareString(shared: Map<string, string>, value: string): string {
  const known = shared.get(value);
  if (known !== undefined) return known;
  const flat = JSON.parse(JSON.stringify(value)) as string;
  shared.set(flat, flat);
  return flat;
}

/** Files an exact string way: alone in the group while it is the only one, in a Map once there are two. */
function placeString(group: FieldGroup, value: string, next: MachineState): void {
  if (group.strings !== undefined) group.strings.set(value, next);
  else if (group.soleNext === undefined) {
    group.sole = value;
    group.soleNext = next;
  } else {
    group.strings = new Map([[group.sole, group.soleNext], [value, next]]);
    group.sole = "";
    group.soleNext = undefined;
  }
}

function newAffixIndex<T>(): AffixIndex<T> {
  return { ways: new Map(), lengths: [] };
}

/** Adds `text`'s length to the index's ascending list of distinct lengths. */
function addLength<T>(index: AffixIndex<T>, text: string): void {
  if (index.lengths.includes(text.length)) return;
  index.lengths.push(text.length);
  index.lengths.sort((a, b) => a - b);
}

function addAffix(index: AffixIndex<MachineState>, text: string, next: MachineState): void {
  index.ways.set(text, next);
  addLength(index, text);
}

function addWildcardAffix(index: AffixIndex<WildcardWay[]>, text: string, way: WildcardWay): void {
  const list = index.ways.get(text);
  if (list === undefined) index.ways.set(text, [way]);
  else list.push(way);
  addLength(index, text);
}

/**
 * Builds the trie. Steps are found again by (state, path, key) through a side table that the
 * finished machine does not keep.
 */
export class StateBuilder {
  readonly root = newState();
  /** Field paths in id order. */
  readonly paths: string[] = [];
  private readonly pathIds = new Map<string, number>();
  /** Exact values already placed, so that equal ones share one string (see `shareString`). */
  private readonly shared = new Map<string, string>();
  /** state → path id → group, while building. */
  private readonly groupsOf = new Map<MachineState, Map<number, FieldGroup>>();
  /** group → step key → next state, while building. */
  private readonly stepsOf = new Map<FieldGroup, Map<string, MachineState>>();
  stateCount = 1;

  /** Adds one step sequence ending in `entry`. */
  add(sequence: readonly MachineStep[], entry: number): void {
    let state = this.root;
    for (const step of sequence) state = this.follow(state, step);
    // Entries are added in ascending order, so a repeat can only be the last one.
    if (state.terminal === -1) state.terminal = entry;
    else if (state.terminals === undefined) {
      if (state.terminal !== entry) state.terminals = [entry];
    } else if (state.terminals[state.terminals.length - 1] !== entry) state.terminals.push(entry);
  }

  /** Drops the side tables; the states are final after this. */
  finish(): { root: MachineState; paths: readonly string[]; stateCount: number } {
    for (const group of this.stepsOf.keys()) sealGroup(group);
    this.groupsOf.clear();
    this.stepsOf.clear();
    this.shared.clear();
    return { root: this.root, paths: this.paths, stateCount: this.stateCount };
  }

  private pathId(path: string): number {
    let id = this.pathIds.get(path);
    if (id === undefined) {
      id = this.paths.length;
      this.paths.push(path);
      this.pathIds.set(path, id);
    }
    return id;
  }

  private follow(state: MachineState, step: MachineStep): MachineState {
    const pathId = this.pathId(step.path);
    let groups = this.groupsOf.get(state);
    if (groups === undefined) {
      groups = new Map();
      this.groupsOf.set(state, groups);
    }
    let group = groups.get(pathId);
    if (group === undefined) {
      if (state.pathId === -1) {
        state.pathId = pathId;
        group = state;
      } else {
        group = newGroup(pathId);
        (state.more ??= []).push(group);
      }
      groups.set(pathId, group);
    }
    let steps = this.stepsOf.get(group);
    if (steps === undefined) {
      steps = new Map();
      this.stepsOf.set(group, steps);
    }
    const existing = steps.get(step.key);
    if (existing !== undefined) return existing;
    const next = newState();
    this.stateCount++;
    steps.set(step.key, next);
    if (step.matchers.length === 1) placeMatcher(group, step.matchers[0]!, next, this.shared);
    else placeWhole(group, step.matchers, next);
    return next;
  }
}

/** Seals a finished group: says which kinds of value it has ways for. */
function sealGroup(group: FieldGroup): void {
  const ways = group.other;
  if (ways === undefined) return;
  ways.forNumbers = ways.numbers !== undefined || ways.numericRanges !== undefined;
  ways.forStrings =
    ways.needsLowered ||
    [ways.prefixes, ways.suffixes, ways.ipv4Ranges, ways.wildcardsByPrefix, ways.wildcardsBySuffix].some((index) => index !== undefined);
}

/** Files one matcher's way to `next` in the index its kind uses. */
function placeMatcher(group: FieldGroup, matcher: ValueMatcher, next: MachineState, shared: Map<string, string>): void {
  if (matcher.kind === "exact" && typeof matcher.value === "string" && matcher.ip === undefined) {
    placeString(group, shareString(shared, matcher.value), next);
    return;
  }
  if (matcher.kind === "exists" && !matcher.exists) {
    (group.onAbsent ??= []).push(next);
    return;
  }
  const ways = otherWays(group);
  switch (matcher.kind) {
    case "exact": {
      const value = matcher.value;
      if (matcher.ip !== undefined) {
        // Any spelling of the address: an IPv4 one is a one-address range, an IPv6 one tested.
        if (matcher.ip.family !== 4) break;
        (ways.ipv4Ranges ??= new RangeIndex()).add(Number(matcher.ip.low), true, Number(matcher.ip.high), true, next);
        return;
      }
      if (typeof value === "number") (ways.numbers ??= new Map()).set(value, next);
      else if (value === true) ways.onTrue = next;
      else if (value === false) ways.onFalse = next;
      else if (value === null) ways.onNull = next;
      return;
    }
    case "equals-ignore-case":
      (ways.ignoreCase ??= new Map()).set(shareString(shared, matcher.value), next);
      ways.needsLowered = true;
      return;
    case "prefix":
      if (matcher.ignoreCase) ways.needsLowered = true;
      addAffix(matcher.ignoreCase ? (ways.prefixesIgnoreCase ??= newAffixIndex()) : (ways.prefixes ??= newAffixIndex()), shareString(shared, matcher.value), next);
      return;
    case "suffix":
      if (matcher.ignoreCase) ways.needsLowered = true;
      addAffix(matcher.ignoreCase ? (ways.suffixesIgnoreCase ??= newAffixIndex()) : (ways.suffixes ??= newAffixIndex()), shareString(shared, matcher.value), next);
      return;
    case "numeric": {
      const { lower, upper } = matcher;
      (ways.numericRanges ??= new RangeIndex()).add(
        lower?.value ?? -Infinity,
        lower?.inclusive ?? true,
        upper?.value ?? Infinity,
        upper?.inclusive ?? true,
        next,
      );
      return;
    }
    case "cidr":
      if (matcher.range.family !== 4) break;
      (ways.ipv4Ranges ??= new RangeIndex()).add(Number(matcher.range.low), true, Number(matcher.range.high), true, next);
      return;
    case "wildcard": {
      const first = matcher.segments[0]!;
      const last = matcher.segments[matcher.segments.length - 1]!;
      if (first === "" && last === "") {
        (ways.tested ??= []).push({ test: compileValueTest([matcher]), next });
        return;
      }
      const segments = matcher.segments.map((segment) => shareString(shared, segment));
      const way = { segments, minLength: wildcardMinLength(segments), next };
      if (first !== "") addWildcardAffix((ways.wildcardsByPrefix ??= newAffixIndex()), segments[0]!, way);
      else addWildcardAffix((ways.wildcardsBySuffix ??= newAffixIndex()), segments[segments.length - 1]!, way);
      return;
    }
    case "exists":
      ways.onPresent = next;
      return;
    default:
      break;
  }
  (ways.tested ??= []).push({ test: compileValueTest([matcher]), next });
}

/** A field kept whole: one test of all its matchers, and its absence if it allows one. */
function placeWhole(group: FieldGroup, matchers: readonly ValueMatcher[], next: MachineState): void {
  (otherWays(group).tested ??= []).push({ test: compileValueTest(matchers), next });
  if (matchers.some((m) => m.kind === "exists" && !m.exists)) (group.onAbsent ??= []).push(next);
}
