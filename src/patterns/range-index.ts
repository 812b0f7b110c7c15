/**
 * `RangeIndex`: the ranges one group of the pattern machine holds on one field (numeric
 * ranges, IPv4 CIDR blocks and addresses), searched by value instead of tried one by one.
 *
 * A centered interval tree, built once when the machine is sealed: each node takes a center
 * point and keeps the ranges that contain it, sorted by low bound and by high bound; the
 * ranges wholly below the center go to its left child, wholly above to its right. A search
 * for `v` goes down one path of the tree and, at each node, reads only the ranges that hold
 * `v` plus one more: O(log n + matches), whatever the ranges' widths and overlaps.
 *
 * @module
 */

interface Range<T> {
  readonly low: number;
  readonly lowInclusive: boolean;
  readonly high: number;
  readonly highInclusive: boolean;
  readonly next: T;
}

interface TreeNode<T> {
  readonly center: number;
  /** Ranges containing `center`, by low bound ascending. */
  readonly byLow: readonly Range<T>[];
  /** The same ranges, by high bound descending. */
  readonly byHigh: readonly Range<T>[];
  readonly below: TreeNode<T> | undefined;
  readonly above: TreeNode<T> | undefined;
}

function holds<T>(range: Range<T>, value: number): boolean {
  return (
    (range.lowInclusive ? range.low <= value : range.low < value) &&
    (range.highInclusive ? value <= range.high : value < range.high)
  );
}

function buildTree<T>(ranges: readonly Range<T>[]): TreeNode<T> | undefined {
  if (ranges.length === 0) return undefined;
  // The median of the finite endpoints splits the ranges about evenly.
  const points = ranges
    .flatMap((range) => [range.low, range.high])
    .filter((point) => Number.isFinite(point))
    .sort((a, b) => a - b);
  const center = points.length === 0 ? 0 : points[points.length >> 1]!;
  const here: Range<T>[] = [];
  const below: Range<T>[] = [];
  const above: Range<T>[] = [];
  for (const range of ranges) {
    if (range.high < center) below.push(range);
    else if (range.low > center) above.push(range);
    else here.push(range);
  }
  if (here.length === 0 && (below.length === 0 || above.length === 0)) {
    // Only ranges with no finite point near the center (empty or all-infinite bounds): keep
    // them in one node that a search reads whole, rather than splitting forever.
    return { center: NaN, byLow: ranges, byHigh: ranges, below: undefined, above: undefined };
  }
  return {
    center,
    byLow: [...here].sort((a, b) => a.low - b.low),
    byHigh: [...here].sort((a, b) => b.high - a.high),
    below: buildTree(below),
    above: buildTree(above),
  };
}

/** Ranges leading to a `T` each (the machine's next states). */
export class RangeIndex<T> {
  private ranges: Range<T>[] | undefined = [];
  private root: TreeNode<T> | undefined;

  /** Adds a range; bounds may be infinite (an open side). Call {@link seal} before searching. */
  add(low: number, lowInclusive: boolean, high: number, highInclusive: boolean, next: T): void {
    if (this.ranges === undefined) throw new Error("a sealed RangeIndex takes no more ranges");
    this.ranges.push({ low, lowInclusive, high, highInclusive, next });
  }

  /** Builds the tree; the index is read-only after this. */
  seal(): void {
    if (this.ranges === undefined) return;
    this.root = buildTree(this.ranges);
    this.ranges = undefined;
  }

  /** Appends to `out` the state of every range that holds `value`. */
  search(value: number, out: T[]): void {
    let node = this.root;
    while (node !== undefined) {
      if (Number.isNaN(node.center)) {
        for (const range of node.byLow) if (holds(range, value)) out.push(range.next);
        return;
      }
      if (value < node.center) {
        // Every range here reaches up to the center, so it holds `value` when its low bound allows.
        for (const range of node.byLow) {
          if (range.low > value) break;
          if (holds(range, value)) out.push(range.next);
        }
        node = node.below;
      } else if (value > node.center) {
        for (const range of node.byHigh) {
          if (range.high < value) break;
          if (holds(range, value)) out.push(range.next);
        }
        node = node.above;
      } else {
        for (const range of node.byLow) if (holds(range, value)) out.push(range.next);
        return;
      }
    }
  }
}
