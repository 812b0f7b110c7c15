/**
 * `canChooseConsistently`: whether each condition of one alternative can pick a leaf (or, for
 * `exists: false`, find none) so that every array holding picked leaves holds them all in one
 * element: EventBridge's array-consistent matching, decided in time polynomial in the event.
 *
 * Trying every combination of leaves is exponential: four conditions in four sibling arrays
 * of a thousand elements each make 10^12 combinations. But arrays nest as a tree, and
 * conditions under different arrays do not constrain each other, so the question splits:
 *
 * - Inside the current slice (the root, or one element of an array), a condition with a
 *   passing leaf outside any further array is met whatever else is chosen; drop it, unless an
 *   absence is open, since picking one of its leaves inside an array may be what keeps the
 *   absent field out (then both are tried). An `exists: false` with any leaf outside further
 *   arrays cannot hold; fail.
 * - The other conditions' leaves sit in arrays directly inside the slice. The conditions
 *   under one array must all pick from one of its elements, so that array holds when some
 *   element holds all of them (the same question, one level down); arrays are independent.
 * - An `exists: false` whose leaves sit in an array that no picked leaf enters fails: nothing
 *   narrows that array, so its leaves are in the slice. Inside the chosen element, its leaves
 *   are carried down; in the other elements they are out of the slice.
 *
 * Each leaf is looked at once per level of arrays it sits in. Three rare shapes still branch:
 * a condition whose leaves lie under different arrays of one slice (dotted keys like
 * `{"a.b": [..], "a": {"b": [..]}}`), tried array by array; a field that allows both a value
 * and absence (`[{"exists": false}, "x"]`), tried both ways; and, beside an open absence, a
 * condition with leaves both inside and outside arrays, tried both ways.
 *
 * @module
 */

/** A leaf a condition may pick: whether its matchers pass it, and the array elements it sits in, outermost first. */
export interface PlacedLeaf {
  readonly matched: boolean;
  readonly elements: readonly (readonly [unknown[], number])[];
}

/** One condition of an alternative, with every leaf at its path. */
export interface ChoiceCondition {
  readonly leaves: readonly PlacedLeaf[];
  /** Whether the condition may hold by absence (`exists: false` among its matchers). */
  readonly allowsAbsence: boolean;
}

/**
 * True when the conditions can be met together in one consistent slice of the event: same
 * answer as the reference matcher's search over every combination.
 */
export function canChooseConsistently(conditions: readonly ChoiceCondition[]): boolean {
  const positives: PlacedLeaf[][] = [];
  const absents: PlacedLeaf[][] = [];
  const either: ChoiceCondition[] = [];
  for (const condition of conditions) {
    const passing = condition.leaves.filter((leaf) => leaf.matched);
    if (!condition.allowsAbsence) {
      if (passing.length === 0) return false;
      positives.push(passing);
    } else if (passing.length === 0) absents.push([...condition.leaves]);
    else either.push(condition);
  }
  return tryEither(either, 0, positives, absents);
}

/** Tries each condition that may hold either way, as a pick and as an absence. */
function tryEither(either: readonly ChoiceCondition[], index: number, positives: PlacedLeaf[][], absents: PlacedLeaf[][]): boolean {
  if (index === either.length) return solve(positives, absents, 0);
  const condition = either[index]!;
  positives.push(condition.leaves.filter((leaf) => leaf.matched));
  const picked = tryEither(either, index + 1, positives, absents);
  positives.pop();
  if (picked) return true;
  absents.push([...condition.leaves]);
  const absent = tryEither(either, index + 1, positives, absents);
  absents.pop();
  return absent;
}

/** The conditions and absences that fall under one array of the slice. */
interface ArrayShare {
  readonly positives: PlacedLeaf[][];
  readonly absents: PlacedLeaf[][];
}

/**
 * Decides the conditions inside one slice: every leaf given agrees on its first `depth`
 * elements. `positives[i]` are the passing leaves condition i may pick; `absents[j]` the
 * leaves an absence must keep out of the slice.
 */
function solve(positives: readonly PlacedLeaf[][], absents: readonly PlacedLeaf[][], depth: number): boolean {
  const required: PlacedLeaf[][] = [];
  const optional: PlacedLeaf[][] = [];
  for (const leaves of positives) {
    if (!leaves.some((leaf) => leaf.elements.length === depth)) {
      required.push(leaves);
      continue;
    }
    // Met here whatever else is chosen. With an absence to keep out, picking one of its leaves
    // inside an array instead may be what narrows that array, so both are tried.
    if (absents.length === 0) continue;
    const deeper = leaves.filter((leaf) => leaf.elements.length > depth);
    if (deeper.length > 0) optional.push(deeper);
  }
  return tryOptional(optional, 0, required, absents, depth);
}

/** Tries each condition met here both ways: by its leaf here, and by one inside an array. */
function tryOptional(
  optional: readonly PlacedLeaf[][],
  index: number,
  required: PlacedLeaf[][],
  absents: readonly PlacedLeaf[][],
  depth: number,
): boolean {
  if (index === optional.length) return solveRequired(required, absents, depth);
  if (tryOptional(optional, index + 1, required, absents, depth)) return true;
  required.push(optional[index]!);
  const entered = tryOptional(optional, index + 1, required, absents, depth);
  required.pop();
  return entered;
}

/** `solve` once every condition left must pick a leaf inside an array of the slice. */
function solveRequired(positives: readonly PlacedLeaf[][], absents: readonly PlacedLeaf[][], depth: number): boolean {
  const shares = new Map<unknown[], ArrayShare>();
  const shareOf = (array: unknown[]): ArrayShare => {
    let share = shares.get(array);
    if (share === undefined) shares.set(array, (share = { positives: [], absents: [] }));
    return share;
  };
  const spread: PlacedLeaf[][] = [];
  for (const leaves of positives) {
    const arrays = new Set(leaves.map((leaf) => leaf.elements[depth]![0]));
    if (arrays.size === 1) shareOf(leaves[0]!.elements[depth]![0]).positives.push(leaves);
    else spread.push(leaves);
  }
  if (spread.length > 0) return trySpread(spread[0]!, positives, absents, depth);
  for (const leaves of absents) {
    for (const leaf of leaves) {
      if (leaf.elements.length === depth) return false; // in every slice from here
    }
    // Split the absence by array; each part is kept out in that array's chosen element.
    const byArray = new Map<unknown[], PlacedLeaf[]>();
    for (const leaf of leaves) {
      const array = leaf.elements[depth]![0];
      const list = byArray.get(array);
      if (list === undefined) byArray.set(array, [leaf]);
      else list.push(leaf);
    }
    for (const [array, part] of byArray) shareOf(array).absents.push(part);
  }
  for (const share of shares.values()) {
    // An array no pick enters is not narrowed: its leaves are in the slice.
    if (share.positives.length === 0) return false;
    if (!someElementHolds(share, depth)) return false;
  }
  return true;
}

/** Whether one element of the share's array can hold all its conditions (and keep its absences out). */
function someElementHolds(share: ArrayShare, depth: number): boolean {
  const byElement = (leaves: readonly PlacedLeaf[]): Map<number, PlacedLeaf[]> => {
    const map = new Map<number, PlacedLeaf[]>();
    for (const leaf of leaves) {
      const index = leaf.elements[depth]![1];
      const list = map.get(index);
      if (list === undefined) map.set(index, [leaf]);
      else list.push(leaf);
    }
    return map;
  };
  const positives = share.positives.map(byElement);
  const absents = share.absents.map(byElement);
  // Only elements where the condition with fewest candidates has one can hold them all.
  let fewest = positives[0]!;
  for (const map of positives) if (map.size < fewest.size) fewest = map;
  for (const index of fewest.keys()) {
    const inElement: PlacedLeaf[][] = [];
    let all = true;
    for (const map of positives) {
      const leaves = map.get(index);
      if (leaves === undefined) {
        all = false;
        break;
      }
      inElement.push(leaves);
    }
    if (!all) continue;
    const absentInElement: PlacedLeaf[][] = [];
    for (const map of absents) {
      const leaves = map.get(index);
      if (leaves !== undefined) absentInElement.push(leaves);
    }
    if (solve(inElement, absentInElement, depth + 1)) return true;
  }
  return false;
}

/** A condition whose leaves lie under several arrays of the slice: try it in each. */
function trySpread(
  leaves: readonly PlacedLeaf[],
  positives: readonly PlacedLeaf[][],
  absents: readonly PlacedLeaf[][],
  depth: number,
): boolean {
  const others = positives.filter((candidate) => candidate !== leaves);
  const arrays = new Set(leaves.map((leaf) => leaf.elements[depth]![0]));
  for (const array of arrays) {
    const within = leaves.filter((leaf) => leaf.elements[depth]![0] === array);
    if (solveRequired([...others, within], absents, depth)) return true;
  }
  return false;
}
