/**
 * `explainEventPattern`: why a pattern matches an event, or why not, in words a person can
 * act on. It follows the reference matcher's definition step by step (see
 * reference-matcher.ts) and reuses its {@link valueMatches}, so its verdict is the reference
 * matcher's; the tests hold it to that on every recorded EventBridge case and on random
 * patterns and events.
 *
 * For each alternative (one per combination of `$or` branches):
 *
 * - a match names, for every field, the leaf it picked (its value, where it sits in the event
 *   with array positions, and the matcher that accepted it), or that it found no value, as
 *   `exists: false` asks;
 * - a non-match names the fields that failed and why. Fields that fail on their own come
 *   first and alone: no value at the path (`missing`), values there but none passed
 *   (`no-match`), or `exists: false` with a value there outside any array (`present`). When
 *   every field could hold on its own, the failure is in how they combine, and the
 *   explanation describes the search's furthest attempt: the first field whose passing values
 *   all sit in other elements of an array than the leaves picked for the fields before it
 *   (`array-consistency`), or an `exists: false` field that has a value in the slice of the
 *   event the picked leaves define (`present`).
 *
 * The output depends only on the pattern and the event (fields in pattern order, leaves in
 * event order), so it is stable from run to run.
 *
 * @module
 */

import type { JsonObject, JsonValue } from "../types.js";
import type {
  EventPattern,
  FieldCondition,
  PatternAlternative,
  ValueMatcher,
} from "./pattern-types.js";
import { valueMatches } from "./reference-matcher.js";

/** A leaf value of an event: what matchers look at. */
export type LeafValue = string | number | boolean | null;

/** A leaf found in the event: its value and where it sits (`detail.items[1].sku`). */
export interface FoundLeaf {
  value: LeafValue;
  /** The leaf's place in the event: keys joined with `.`, array positions as `[i]`. */
  at: string;
}

/** A leaf picked for another field, which the failure of this one depends on. */
export interface PickedLeaf extends FoundLeaf {
  /** The field (flattened path) it was picked for. */
  path: string;
}

/** How one field of a matching alternative was satisfied. */
export type FieldOutcome =
  | {
      path: string;
      /** A leaf at the path passed. */
      result: "value";
      value: LeafValue;
      at: string;
      /** The first of the field's matchers that accepted the value, in pattern syntax. */
      matchedBy: JsonValue;
    }
  | {
      path: string;
      /** No leaf at the path, in the slice of the event the other fields picked: `exists: false` holds. */
      result: "absent";
    };

/** Why a field of an alternative failed. */
export const FAILURE_REASONS = ["missing", "no-match", "present", "array-consistency"] as const;
/** See {@link FAILURE_REASONS}. */
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** One field that failed in an alternative. */
export interface FieldFailure {
  path: string;
  /**
   * - `missing`: no value at the path, and the field needs one;
   * - `no-match`: values at the path, none accepted by any of the field's matchers;
   * - `present`: the field allows only `exists: false` (or nothing else passed), but a value is there;
   * - `array-consistency`: values passed, but each sits in a different element of an array
   *   than a leaf picked for another field of the alternative.
   */
  reason: FailureReason;
  /** One sentence naming the field, the matchers and the values. */
  message: string;
  /**
   * The leaves that matter, in event order: `no-match`, every leaf at the path; `present`,
   * the leaves that are there; `array-consistency`, the leaves that passed; `missing`, none.
   */
  found: FoundLeaf[];
  /**
   * `array-consistency`: the leaves picked for other fields that the passing leaves conflict
   * with. `present` found by the combined search: the picked leaves that put the value in the
   * slice. Empty otherwise.
   */
  picked: PickedLeaf[];
}

/** The explanation of one alternative. */
export type AlternativeExplanation =
  | {
      /** Position in the pattern's alternatives, from 0. */
      index: number;
      /** The alternative as a flattened pattern: field path → its matchers, in pattern syntax. */
      pattern: JsonObject;
      match: true;
      /** Every field, in pattern order, with how it was satisfied. */
      fields: FieldOutcome[];
    }
  | {
      index: number;
      pattern: JsonObject;
      match: false;
      /** The fields that failed, in pattern order; never empty. */
      failures: FieldFailure[];
    };

/** What {@link explainEventPattern} returns. */
export interface PatternExplanation {
  /** The verdict: always what `matchesEventPattern` answers. */
  match: boolean;
  /** The index of the first alternative that matched; absent when none did. */
  matchedAlternative?: number;
  /** One line for people. */
  summary: string;
  /** Every alternative, in order. */
  alternatives: AlternativeExplanation[];
}

/** A leaf of the flattened event, as the reference matcher sees it, plus its place. */
interface Leaf extends FoundLeaf {
  /** Keys joined with `.`, without array positions: what pattern fields name. */
  readonly path: string;
  /** Array id (numbered in the order arrays are met) to the element index the leaf is in. */
  readonly elements: ReadonlyMap<number, number>;
}

/** How far one run of the search got: the fields placed before it stopped, and their picks. */
interface Attempt {
  depth: number;
  picked: readonly (Leaf | "absent")[];
}

interface FlatEvent {
  leaves: Leaf[];
  /** Array id → the array's place in the event (`detail.items`). */
  arrays: string[];
}

/** Values listed in one message before "and N more". */
const MAX_VALUES_IN_MESSAGE = 5;

/**
 * Explains how `pattern` applies to `event`, taken exactly as given (no renaming of
 * `detail`), as `matchesEventPattern` does. `match` always equals its verdict.
 */
export function explainEventPattern(pattern: EventPattern, event: unknown): PatternExplanation {
  const flat = flatten(event);
  const alternatives = pattern.alternatives.map((alternative, index) =>
    explainAlternative(alternative, index, flat),
  );
  const first = alternatives.find((a) => a.match);
  const count = alternatives.length;
  if (first !== undefined) {
    const summary =
      count === 1 ? "match" : `match: alternative #${first.index} of ${count} matched`;
    return { match: true, matchedAlternative: first.index, summary, alternatives };
  }
  const failures = alternatives.flatMap((a) => (a.match ? [] : a.failures));
  const summary =
    count === 1
      ? `no match: ${failures.map((f) => f.message).join("; ")}`
      : `no match: none of the ${count} alternatives matched`;
  return { match: false, summary, alternatives };
}

/**
 * The explanation as indented text, for the CLI:
 *
 *     no match
 *     alternative #0 {"source":["shop.orders"],"detail.total":[{"numeric":[">",100]}]}: no match
 *       - detail.total: found 50; none passed [{"numeric":[">",100]}]
 */
export function formatPatternExplanation(explanation: PatternExplanation): string {
  const lines = [explanation.match ? "match" : "no match"];
  for (const alternative of explanation.alternatives) {
    const head = `alternative #${alternative.index} ${JSON.stringify(alternative.pattern)}`;
    if (alternative.match) {
      lines.push(`${head}: match`);
      for (const field of alternative.fields) {
        lines.push(
          field.result === "value"
            ? `  - ${field.path}: ${describeLeaf(field, field.path)} passed ${JSON.stringify(field.matchedBy)}`
            : `  - ${field.path}: no value, as {"exists":false} asks`,
        );
      }
    } else {
      lines.push(`${head}: no match`);
      for (const failure of alternative.failures) lines.push(`  - ${failure.message}`);
    }
  }
  return lines.join("\n");
}

function explainAlternative(
  alternative: PatternAlternative,
  index: number,
  flat: FlatEvent,
): AlternativeExplanation {
  const pattern: JsonObject = {};
  for (const condition of alternative)
    pattern[condition.path] = condition.matchers.map(matcherJson);
  const { leaves } = flat;
  const atPath = alternative.map((condition) =>
    leaves.filter((leaf) => leaf.path === condition.path),
  );
  const candidates = alternative.map((condition, i) =>
    atPath[i]!.filter((leaf) => condition.matchers.some((m) => valueMatches(m, leaf.value))),
  );

  // Fields that fail whatever the others pick: then the alternative fails, and these are why.
  const alone: FieldFailure[] = [];
  alternative.forEach((condition, i) => {
    const failure = failsAlone(condition, atPath[i]!, candidates[i]!);
    if (failure !== undefined) alone.push(failure);
  });
  if (alone.length > 0) return { index, pattern, match: false, failures: alone };

  // The reference matcher's search, recording the furthest it got and the picks that matched.
  const picked: (Leaf | "absent")[] = [];
  let furthest: Attempt = { depth: -1, picked: [] };
  let matched: (Leaf | "absent")[] | undefined;
  const search = (depth: number): boolean => {
    if (depth > furthest.depth) furthest = { depth, picked: [...picked] };
    if (depth === alternative.length) {
      if (!absenceHolds(alternative, picked, leaves)) return false;
      matched = [...picked];
      return true;
    }
    const condition = alternative[depth]!;
    for (const leaf of candidates[depth]!) {
      if (!pickedLeaves(picked).every((p) => consistent(p, leaf))) continue;
      picked.push(leaf);
      const found = search(depth + 1);
      picked.pop();
      if (found) return true;
    }
    if (allowsAbsence(condition)) {
      picked.push("absent");
      const found = search(depth + 1);
      picked.pop();
      if (found) return true;
    }
    return false;
  };

  if (search(0) && matched !== undefined) {
    const picks = matched;
    const fields = alternative.map((condition, i): FieldOutcome => {
      const leaf = picks[i]!;
      if (leaf === "absent") return { path: condition.path, result: "absent" };
      const matcher = condition.matchers.find((m) => valueMatches(m, leaf.value))!;
      return {
        path: condition.path,
        result: "value",
        value: leaf.value,
        at: leaf.at,
        matchedBy: matcherJson(matcher),
      };
    });
    return { index, pattern, match: true, fields };
  }
  return {
    index,
    pattern,
    match: false,
    failures: explainCombination(alternative, furthest, candidates, flat),
  };
}

/** A failure of `condition` that no choice of the other fields can mend, if it has one. */
function failsAlone(
  condition: FieldCondition,
  atPath: readonly Leaf[],
  candidates: readonly Leaf[],
): FieldFailure | undefined {
  if (candidates.length > 0) return undefined;
  const { path } = condition;
  const matchers = JSON.stringify(condition.matchers.map(matcherJson));
  if (!allowsAbsence(condition)) {
    if (atPath.length === 0) {
      return {
        path,
        reason: "missing",
        message: `${path}: no value at this path, and ${matchers} needs one`,
        found: [],
        picked: [],
      };
    }
    const found = atPath.map(foundLeaf);
    return {
      path,
      reason: "no-match",
      message: `${path}: found ${listValues(found, path)}; none passed ${matchers}`,
      found,
      picked: [],
    };
  }
  // A leaf outside every array is in every slice of the event: the absence can never hold.
  const everywhere = atPath.filter((leaf) => leaf.elements.size === 0);
  if (everywhere.length === 0) return undefined;
  const found = everywhere.map(foundLeaf);
  return {
    path,
    reason: "present",
    message: presentMessage(condition, found, ""),
    found,
    picked: [],
  };
}

/**
 * Why the search failed when every field could hold on its own, from its furthest attempt:
 * the field it could not place, or the `exists: false` fields that saw a value.
 */
function explainCombination(
  alternative: PatternAlternative,
  furthest: Attempt,
  candidates: readonly (readonly Leaf[])[],
  flat: FlatEvent,
): FieldFailure[] {
  const picks = alternative.flatMap((condition, i): { path: string; leaf: Leaf }[] => {
    const leaf = furthest.picked[i];
    return leaf === undefined || leaf === "absent" ? [] : [{ path: condition.path, leaf }];
  });
  if (furthest.depth < alternative.length) {
    // This field allows no absence (else the search would have gone past it) and has passing
    // leaves (else it would have failed alone): each conflicts with an earlier pick.
    const condition = alternative[furthest.depth]!;
    const passing = candidates[furthest.depth]!;
    const conflicting = picks.filter(({ leaf }) => passing.some((c) => !consistent(leaf, c)));
    const arrays = new Set<string>();
    for (const c of passing) {
      for (const { leaf } of conflicting)
        for (const id of conflictingArrays(leaf, c)) arrays.add(flat.arrays[id]!);
    }
    const found = passing.map(foundLeaf);
    return [
      {
        path: condition.path,
        reason: "array-consistency",
        message:
          `${condition.path}: ${listValues(found, condition.path)} passed, but in a different element of ` +
          `${[...arrays].join(" and ")} than ${listPicks(conflicting)}; fields under one array must come from the same element`,
        found,
        picked: conflicting.map(({ path, leaf }) => ({ path, ...foundLeaf(leaf) })),
      },
    ];
  }
  // Every field was placed, but an absence failed in that slice of the event.
  const failures: FieldFailure[] = [];
  alternative.forEach((condition, i) => {
    if (furthest.picked[i] !== "absent") return;
    const there = flat.leaves.filter(
      (leaf) => leaf.path === condition.path && picks.every((p) => consistent(p.leaf, leaf)),
    );
    if (there.length === 0) return;
    const found = there.map(foundLeaf);
    const slice = picks.filter(({ leaf }) => there.some((t) => sharesArray(leaf, t)));
    const context = slice.length === 0 ? "" : ` in the same array element as ${listPicks(slice)}`;
    failures.push({
      path: condition.path,
      reason: "present",
      message: presentMessage(condition, found, context),
      found,
      picked: slice.map(({ path, leaf }) => ({ path, ...foundLeaf(leaf) })),
    });
  });
  return failures;
}

function absenceHolds(
  alternative: PatternAlternative,
  picked: readonly (Leaf | "absent")[],
  leaves: readonly Leaf[],
): boolean {
  const chosen = pickedLeaves(picked);
  return alternative.every(
    (condition, i) =>
      picked[i] !== "absent" ||
      !leaves.some(
        (leaf) => leaf.path === condition.path && chosen.every((p) => consistent(p, leaf)),
      ),
  );
}

function pickedLeaves(picked: readonly (Leaf | "absent")[]): Leaf[] {
  return picked.filter((p): p is Leaf => p !== "absent");
}

function allowsAbsence(condition: FieldCondition): boolean {
  return condition.matchers.some((m) => m.kind === "exists" && !m.exists);
}

/** The reference matcher's flattening, remembering each leaf's place and each array's. */
function flatten(event: unknown): FlatEvent {
  const leaves: Leaf[] = [];
  const arrays: string[] = [];
  const visit = (
    value: unknown,
    path: string,
    at: string,
    elements: ReadonlyMap<number, number>,
  ): void => {
    if (Array.isArray(value)) {
      const id = arrays.length;
      arrays.push(at);
      value.forEach((item, index) =>
        visit(item, path, `${at}[${index}]`, new Map(elements).set(id, index)),
      );
    } else if (typeof value === "object" && value !== null) {
      for (const [key, item] of Object.entries(value))
        visit(item, `${path}.${key}`, `${at}.${key}`, elements);
    } else if (
      typeof value === "string" ||
      typeof value === "number" ||
      typeof value === "boolean" ||
      value === null
    ) {
      leaves.push({ path, value, at, elements });
    }
  };
  if (typeof event === "object" && event !== null && !Array.isArray(event)) {
    for (const [key, item] of Object.entries(event)) visit(item, key, key, new Map());
  }
  return { leaves, arrays };
}

/** True when no array holds `a` and `b` in different elements. */
function consistent(a: Leaf, b: Leaf): boolean {
  return conflictingArrays(a, b).length === 0;
}

/** The arrays that hold `a` and `b` in different elements. */
function conflictingArrays(a: Leaf, b: Leaf): number[] {
  const ids: number[] = [];
  for (const [id, index] of a.elements) {
    const other = b.elements.get(id);
    if (other !== undefined && other !== index) ids.push(id);
  }
  return ids;
}

function sharesArray(a: Leaf, b: Leaf): boolean {
  for (const id of a.elements.keys()) if (b.elements.has(id)) return true;
  return false;
}

function foundLeaf(leaf: Leaf): FoundLeaf {
  return { value: leaf.value, at: leaf.at };
}

/** `"x" (at detail.items[1].sku)`: a value, with its place when that says more than `path`. */
function describeLeaf(leaf: FoundLeaf, path: string): string {
  return leaf.at === path
    ? JSON.stringify(leaf.value)
    : `${JSON.stringify(leaf.value)} (at ${leaf.at})`;
}

/** Values found at `path`, the first few of them. */
function listValues(found: readonly FoundLeaf[], path: string): string {
  const shown = found.slice(0, MAX_VALUES_IN_MESSAGE).map((leaf) => describeLeaf(leaf, path));
  const more = found.length - shown.length;
  return more > 0 ? `${shown.join(", ")} and ${more} more` : shown.join(", ");
}

/** Leaves picked for other fields: `detail.items.sku's "x" (at detail.items[0].sku)`. */
function listPicks(picks: readonly { path: string; leaf: Leaf }[]): string {
  return picks.map(({ path, leaf }) => `${path}'s ${describeLeaf(leaf, path)}`).join(" and ");
}

/** The message of a `present` failure; `context` names the picks that put the value in the slice. */
function presentMessage(
  condition: FieldCondition,
  found: readonly FoundLeaf[],
  context: string,
): string {
  const values = `${listValues(found, condition.path)}${context}`;
  if (condition.matchers.length === 1)
    return `${condition.path}: {"exists":false} needs no value here, but found ${values}`;
  const matchers = JSON.stringify(condition.matchers.map(matcherJson));
  return `${condition.path}: found ${values}; none passed ${matchers}, and {"exists":false} needs no value here`;
}

/** A matcher in pattern syntax: `"x"`, `{"prefix": "x"}`, `{"numeric": [">", 0, "<=", 5]}`. */
export function matcherJson(matcher: ValueMatcher): JsonValue {
  switch (matcher.kind) {
    case "exact":
      return matcher.value;
    case "prefix":
    case "suffix":
      return {
        [matcher.kind]: matcher.ignoreCase
          ? { "equals-ignore-case": matcher.value }
          : matcher.value,
      };
    case "equals-ignore-case":
      return { "equals-ignore-case": matcher.value };
    case "wildcard":
      return { wildcard: matcher.text };
    case "numeric": {
      const { lower, upper } = matcher;
      if (lower && upper && lower.inclusive && upper.inclusive && lower.value === upper.value)
        return { numeric: ["=", lower.value] };
      const operands: (string | number)[] = [];
      if (lower) operands.push(lower.inclusive ? ">=" : ">", lower.value);
      if (upper) operands.push(upper.inclusive ? "<=" : "<", upper.value);
      return { numeric: operands };
    }
    case "exists":
      return { exists: matcher.exists };
    case "cidr":
      return { cidr: matcher.text };
    case "anything-but":
      return { "anything-but": oneOrMany([...matcher.values]) };
    case "anything-but-prefix":
      return { "anything-but": { prefix: oneOrMany(matcher.values) } };
    case "anything-but-suffix":
      return { "anything-but": { suffix: oneOrMany(matcher.values) } };
    case "anything-but-ignore-case":
      return { "anything-but": { "equals-ignore-case": oneOrMany(matcher.values) } };
    case "anything-but-wildcard":
      return { "anything-but": { wildcard: oneOrMany(matcher.values.map((w) => w.text)) } };
    // Relaybus' own operators.
    case "and":
      return { $and: matcher.matchers.map(matcherJson) };
    case "contains":
      return { contains: matcher.value };
    case "regex":
      return { regex: matcher.text };
    case "wildcard-ignore-case":
      return { wildcard: { "equals-ignore-case": matcher.text } };
    case "anything-but-wildcard-ignore-case":
      return {
        "anything-but": {
          wildcard: { "equals-ignore-case": oneOrMany(matcher.values.map((w) => w.text)) },
        },
      };
    default: {
      // A kind added after this was written: name it, with its operand where it has a usual one.
      const other = matcher as { kind: string; text?: unknown; value?: unknown };
      const operand = other.text ?? other.value;
      return { [other.kind]: isJson(operand) ? operand : true };
    }
  }
}

function oneOrMany<T extends JsonValue>(values: readonly T[]): T | T[] {
  return values.length === 1 ? values[0]! : [...values];
}

function isJson(value: unknown): value is JsonValue {
  return (
    typeof value === "string" ||
    typeof value === "number" ||
    typeof value === "boolean" ||
    value === null
  );
}
