/**
 * `compileEventPattern`: a checked pattern turned into a fast matcher for the hot path.
 *
 * It means exactly what {@link matchesEventPattern} means, but it does not flatten the event.
 * For each condition it walks the event along the condition's path (trying, at each object,
 * every way the remaining path's `.`-separated segments can be one key, since `{"a.b": 1}` and
 * `{"a": {"b": 1}}` are the same field), testing the leaves it reaches with a test compiled
 * once. Array consistency is what makes matching more than "every condition holds somewhere":
 * it only matters when a leaf is reached through an array of objects, so each condition
 * reports whether it was settled without one ("free") or needs the consistent search. The
 * search, which allocates, runs only for alternatives whose outcome depends on it.
 *
 * A free leaf is consistent with every choice, so a condition that has one is settled for
 * every other condition that picks a leaf. It is not settled for an `exists: false` whose path
 * has leaves only inside arrays: that absence holds only in a slice narrow enough to exclude
 * them, and what narrows the slice is the leaves the other conditions pick, so one of them may
 * have to pick a leaf inside an array even though it also has a free one. For
 * `{"a.b": [{"anything-but": [0]}], "a": [{"exists": false}]}` on
 * `{"a": [{"b": -1}, null], "a.b": ""}`, a.b must be the -1 of element 0, not the free "", for
 * the null of element 1 to fall outside the slice. When such an absence is open, the search
 * therefore takes every condition of the alternative, which makes it the reference definition.
 *
 * Conditions are shared between the alternatives that `$or` forks, and a condition's outcome
 * is remembered for the duration of one `matches` call, so `$or` does not repeat work.
 *
 * @module
 */

import { canChooseConsistently, type PlacedLeaf } from "./consistent-choice.js";
import type { EventPattern, FieldCondition } from "./pattern-types.js";
import { compileValueTest, type ValueTest } from "./value-tests.js";

/** A pattern compiled for matching. */
export interface CompiledPattern {
  /** The pattern it was compiled from. */
  readonly pattern: EventPattern;
  /** True when `event` matches; same answer as {@link matchesEventPattern}. Allocation-free in the common case. */
  matches(event: unknown): boolean;
}

const SATISFIED = 1;
const FAILED = 2;
/** Depends on the slice; the condition can only pick a leaf there. */
const UNDECIDED = 3;
/** Depends on the slice, and may hold by absence: the slice must exclude its leaves, which sit only in arrays. */
const UNDECIDED_ABSENCE = 4;

interface CompiledCondition {
  readonly segmentCount: number;
  /** `keys[i][j]`: segments i..j joined with "." — every key that can stand for that run. */
  readonly keys: readonly (readonly string[])[];
  /** Whether `keys[i][j]` names something on `Object.prototype`, so an own-property check is needed. */
  readonly inherited: readonly (readonly boolean[])[];
  readonly test: ValueTest;
  readonly allowsAbsence: boolean;
  /**
   * `sharedArrayAt[i]`: whether an array met after `i` segments can also hold another
   * condition's leaves (another path equals or runs through those segments). Only such arrays
   * make a leaf depend on the other conditions' choices; arrays no other path enters do not.
   */
  readonly sharedArrayAt: readonly boolean[];
  /** The `matches` call this condition's `status` belongs to. */
  epoch: number;
  status: number;
}

interface CompiledAlternative {
  readonly conditions: readonly CompiledCondition[];
}

function compileCondition(condition: FieldCondition, allPaths: ReadonlySet<string>): CompiledCondition {
  const segments = condition.segments;
  const keys: string[][] = [];
  const inherited: boolean[][] = [];
  for (let i = 0; i < segments.length; i++) {
    keys.push([]);
    inherited.push([]);
    for (let j = 0; j < segments.length; j++) {
      const key = j < i ? "" : segments.slice(i, j + 1).join(".");
      keys[i]!.push(key);
      inherited[i]!.push(key in Object.prototype);
    }
  }
  return {
    segmentCount: segments.length,
    keys,
    inherited,
    test: compileValueTest(condition.matchers),
    allowsAbsence: condition.matchers.some((m) => m.kind === "exists" && !m.exists),
    sharedArrayAt: segments.map((_, i) => i).concat(segments.length).map((i) => {
      const here = segments.slice(0, i).join(".");
      return [...allPaths].some(
        (path) => path !== condition.path && (i === 0 || path === here || path.startsWith(`${here}.`)),
      );
    }),
    epoch: -1,
    status: 0,
  };
}

// What one walk found, kept in module state so that walking allocates nothing. Matching is
// synchronous and never re-entered, so one set of these suffices.
let matchedFree = false;
let matchedInArray = false;
let leafFree = false;
let leafInArray = false;

/**
 * Walks `node` along the condition's path from segment `index`, recording what it reaches.
 * `inArray` is true once the walk has passed through an array on the way to the leaf.
 */
function walk(condition: CompiledCondition, node: unknown, index: number, inArray: boolean): void {
  const count = condition.segmentCount;
  if (index === count) {
    if (Array.isArray(node)) {
      // An array at the leaf position: its scalar elements (and nested arrays' ones) are leaves of this path only.
      const shared = inArray || condition.sharedArrayAt[index]!;
      for (let k = 0; k < node.length && !matchedFree; k++) walk(condition, node[k], index, shared);
      return;
    }
    if (node === null || typeof node === "string" || typeof node === "number" || typeof node === "boolean") {
      const matched = condition.test(node);
      if (inArray) {
        leafInArray = true;
        if (matched) matchedInArray = true;
      } else {
        leafFree = true;
        if (matched) matchedFree = true;
      }
    }
    return;
  }
  if (typeof node !== "object" || node === null) return;
  if (Array.isArray(node)) {
    const shared = inArray || condition.sharedArrayAt[index]!;
    for (let k = 0; k < node.length && !matchedFree; k++) walk(condition, node[k], index, shared);
    return;
  }
  const keys = condition.keys[index]!;
  const inherited = condition.inherited[index]!;
  const record = node as Record<string, unknown>;
  for (let j = index; j < count && !matchedFree; j++) {
    const key = keys[j]!;
    if (inherited[j] && !Object.hasOwn(record, key)) continue;
    const child = record[key];
    if (child !== undefined) walk(condition, child, j + 1, inArray);
  }
}

function evaluate(condition: CompiledCondition, event: object): number {
  matchedFree = false;
  matchedInArray = false;
  leafFree = false;
  leafInArray = false;
  walk(condition, event, 0, false);
  // A leaf reached without passing an array of objects shares no array with any other
  // condition's leaf, so it is consistent with every choice the others make.
  if (matchedFree) return SATISFIED;
  if (condition.allowsAbsence && !leafFree) return leafInArray ? UNDECIDED_ABSENCE : SATISFIED;
  if (matchedInArray) return UNDECIDED;
  return FAILED;
}

// The array elements the walk in `collect` is inside, outermost first, as two parallel stacks:
// a leaf's trail is copied out of them only when the leaf is kept.
const trailArrays: unknown[][] = [];
const trailIndexes: number[] = [];

/**
 * Gathers the leaves at the condition's path with the array elements each sits in. A condition
 * that cannot hold by absence only ever picks a passing leaf (`canChooseConsistently`), so its
 * failing leaves are left out.
 */
function collect(condition: CompiledCondition, node: unknown, index: number, out: PlacedLeaf[]): void {
  if (index === condition.segmentCount) {
    if (Array.isArray(node)) {
      collectElements(condition, node, index, out);
    } else if (node === null || typeof node === "string" || typeof node === "number" || typeof node === "boolean") {
      const matched = condition.test(node);
      if (matched || condition.allowsAbsence) out.push({ matched, elements: currentTrail() });
    }
    return;
  }
  if (typeof node !== "object" || node === null) return;
  if (Array.isArray(node)) {
    collectElements(condition, node, index, out);
    return;
  }
  const record = node as Record<string, unknown>;
  const keys = condition.keys[index]!;
  const inherited = condition.inherited[index]!;
  for (let j = index; j < condition.segmentCount; j++) {
    const key = keys[j]!;
    if (inherited[j] && !Object.hasOwn(record, key)) continue;
    const child = record[key];
    if (child !== undefined) collect(condition, child, j + 1, out);
  }
}

function collectElements(condition: CompiledCondition, array: unknown[], index: number, out: PlacedLeaf[]): void {
  trailArrays.push(array);
  trailIndexes.push(0);
  const top = trailIndexes.length - 1;
  for (let k = 0; k < array.length; k++) {
    trailIndexes[top] = k;
    collect(condition, array[k], index, out);
  }
  trailArrays.pop();
  trailIndexes.pop();
}

function currentTrail(): (readonly [unknown[], number])[] {
  const trail = new Array<readonly [unknown[], number]>(trailArrays.length);
  for (let i = 0; i < trail.length; i++) trail[i] = [trailArrays[i]!, trailIndexes[i]!];
  return trail;
}

/**
 * The array-consistent search over the undecided conditions of one alternative (the settled
 * ones are consistent with any choice): same definition as the reference matcher's, decided
 * without trying every combination (`consistent-choice.ts`).
 */
function consistentSearch(conditions: readonly CompiledCondition[], event: object): boolean {
  return canChooseConsistently(
    conditions.map((condition) => {
      const leaves: PlacedLeaf[] = [];
      collect(condition, event, 0, leaves);
      return { leaves, allowsAbsence: condition.allowsAbsence };
    }),
  );
}

const NO_FIELDS = Object.freeze({});

/**
 * Compiles a checked pattern (from {@link parseEventPattern}) into a {@link CompiledPattern}.
 * Compile once, at load; the result is immutable in meaning and safe to share.
 */
export function compileEventPattern(pattern: EventPattern): CompiledPattern {
  const shared = new Map<FieldCondition, CompiledCondition>();
  const allPaths = new Set(pattern.alternatives.flatMap((alternative) => alternative.map((c) => c.path)));
  const alternatives: CompiledAlternative[] = pattern.alternatives.map((alternative) => ({
    conditions: alternative.map((condition) => {
      let compiled = shared.get(condition);
      if (!compiled) {
        compiled = compileCondition(condition, allPaths);
        shared.set(condition, compiled);
      }
      return compiled;
    }),
  }));
  let epoch = 0;
  const undecided: CompiledCondition[] = [];

  return {
    pattern,
    matches(event: unknown): boolean {
      const root: object = typeof event === "object" && event !== null && !Array.isArray(event) ? event : NO_FIELDS;
      epoch++;
      for (let a = 0; a < alternatives.length; a++) {
        const conditions = alternatives[a]!.conditions;
        let failed = false;
        let absenceOpen = false;
        undecided.length = 0;
        for (let c = 0; c < conditions.length; c++) {
          const condition = conditions[c]!;
          if (condition.epoch !== epoch) {
            condition.status = evaluate(condition, root);
            condition.epoch = epoch;
          }
          if (condition.status === FAILED) {
            failed = true;
            break;
          }
          if (condition.status === UNDECIDED) undecided.push(condition);
          else if (condition.status === UNDECIDED_ABSENCE) {
            undecided.push(condition);
            absenceOpen = true;
          }
        }
        if (failed) continue;
        if (undecided.length === 0) return true;
        // An open absence may need a settled condition's leaf inside an array to narrow the slice.
        if (consistentSearch(absenceOpen ? conditions : [...undecided], root)) return true;
      }
      return false;
    },
  };
}
