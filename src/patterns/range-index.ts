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
 * Most groups hold ranges that barely overlap (a tenant's id range, a /24 block each): those
 * are kept flat instead, in typed arrays a search reads a few cache lines of. The finite
 * bounds, sorted and distinct, cut the number line into regions (each bound a region of its
 * own, and the open stretches between), and each region lists the ranges that cover it. A
 * search is a binary search over the bounds and a read of one region's list. The lists
 * together hold each range once per region it covers, so a set where wide ranges overlap
 * many narrow ones would grow them towards n²; past {@link FLAT_MEMBERS_PER_RANGE} members
 * per range the index is built as the tree instead. A handful of ranges (deep in the machine,
 * a rule's own `amount` or `priority` bounds) are simply tried in turn: one short list read.
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

/** Up to this many ranges, a search tries each: fewer memory reads than either structure. */
const SCANNED_RANGES = 8;

/** How many region memberships per range, on average, the flat form may hold before the tree is used. */
const FLAT_MEMBERS_PER_RANGE = 4;

/** The flat form: regions cut by the sorted distinct finite bounds, each with its list of ranges. */
interface FlatRegions<T> {
  /** Sorted distinct finite bounds: region 2i+1 is the point `bounds[i]`, region 2i the stretch below it. */
  readonly bounds: Float64Array;
  /** Every {@link BOUNDS_PER_BLOCK}th bound: a search finds its block here, in a few hot lines, then reads one block. */
  readonly blockFirsts: Float64Array;
  /** Region r lists `members[starts[r]]` to `members[starts[r + 1] - 1]`, indices into `nexts`. */
  readonly starts: Int32Array;
  readonly members: Int32Array;
  /**
   * When no region has two members (ranges that do not overlap): region r's member's `next`,
   * or undefined; one read where `starts`, `members` and `nexts` take three, each a likely
   * cache miss in a large index.
   */
  readonly soleNexts: readonly (T | undefined)[] | undefined;
  readonly nexts: readonly T[];
}

/** Bounds per block of a flat index's two-level search: 16 doubles, two cache lines. */
const BOUNDS_PER_BLOCK = 16;

/**
 * How many bounds are at most `value`: the block is found among the blocks' first bounds
 * (a small array that stays in cache), then the bound within that one block.
 */
function countBoundsAtMost(flat: FlatRegions<unknown>, value: number): number {
  const firsts = flat.blockFirsts;
  let lo = 0;
  let hi = firsts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (firsts[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  if (lo === 0) return 0;
  const bounds = flat.bounds;
  let start = (lo - 1) * BOUNDS_PER_BLOCK + 1;
  const end = Math.min(lo * BOUNDS_PER_BLOCK, bounds.length);
  while (start < end && bounds[start]! <= value) start++;
  return start;
}

/** How many bounds are at most `value`: a binary search (while building; searches use {@link countBoundsAtMost}). */
function countBounds(bounds: Float64Array, value: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bounds[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The region `value` falls in: the point region of a bound it equals, else the stretch it lies in. */
function regionOf(bounds: Float64Array, value: number, atMost = countBounds(bounds, value)): number {
  return atMost > 0 && bounds[atMost - 1] === value ? 2 * atMost - 1 : 2 * atMost;
}

/** The flat form of `ranges`, or undefined when its lists would pass the budget. */
function buildFlat<T>(ranges: readonly Range<T>[]): FlatRegions<T> | undefined {
  const finite = ranges.flatMap((range) => [range.low, range.high]).filter((point) => Number.isFinite(point));
  const bounds = Float64Array.from(new Set(finite)).sort();
  const regionCount = 2 * bounds.length + 1;
  // Each range covers one run of regions, [first, last]; empty ranges cover none.
  const spans: { first: number; last: number; range: number }[] = [];
  let total = 0;
  ranges.forEach((range, index) => {
    const first =
      range.low === -Infinity ? 0 : range.lowInclusive ? regionOf(bounds, range.low) : regionOf(bounds, range.low) + 1;
    const last =
      range.high === Infinity ? regionCount - 1 : range.highInclusive ? regionOf(bounds, range.high) : regionOf(bounds, range.high) - 1;
    if (range.low === Infinity || range.high === -Infinity || first > last) return;
    spans.push({ first, last, range: index });
    total += last - first + 1;
  });
  if (total > FLAT_MEMBERS_PER_RANGE * ranges.length + 64) return undefined;
  const counts = new Int32Array(regionCount + 1);
  for (const { first, last } of spans) for (let region = first; region <= last; region++) counts[region + 1]!++;
  const starts = new Int32Array(regionCount + 1);
  for (let region = 0; region < regionCount; region++) starts[region + 1] = starts[region]! + counts[region + 1]!;
  const fill = starts.slice(0, regionCount);
  const members = new Int32Array(total);
  for (const { first, last, range } of spans) for (let region = first; region <= last; region++) members[fill[region]!++] = range;
  const nexts = ranges.map((range) => range.next);
  let soleNexts: (T | undefined)[] | undefined;
  if (counts.every((count) => count <= 1)) {
    soleNexts = new Array<T | undefined>(regionCount).fill(undefined);
    for (let region = 0; region < regionCount; region++) if (starts[region + 1]! > starts[region]!) soleNexts[region] = nexts[members[starts[region]!]!];
  }
  const blockFirsts = new Float64Array(Math.ceil(bounds.length / BOUNDS_PER_BLOCK));
  for (let block = 0; block < blockFirsts.length; block++) blockFirsts[block] = bounds[block * BOUNDS_PER_BLOCK]!;
  return { bounds, blockFirsts, starts, members, soleNexts, nexts };
}

/** Ranges leading to a `T` each (the machine's next states). */
export class RangeIndex<T> {
  private ranges: Range<T>[] | undefined = [];
  private root: TreeNode<T> | undefined;
  private flat: FlatRegions<T> | undefined;
  private scanned: readonly Range<T>[] | undefined;

  /** Adds a range; bounds may be infinite (an open side). Call {@link seal} before searching. */
  add(low: number, lowInclusive: boolean, high: number, highInclusive: boolean, next: T): void {
    if (this.ranges === undefined) throw new Error("a sealed RangeIndex takes no more ranges");
    this.ranges.push({ low, lowInclusive, high, highInclusive, next });
  }

  /** The states of its ranges, in the order added (before {@link seal}). */
  nexts(): T[] {
    if (this.ranges === undefined) throw new Error("a sealed RangeIndex no longer lists its ranges");
    return this.ranges.map((range) => range.next);
  }

  /** Calls `f` with each range, in the order added (before {@link seal}). */
  forEachRange(f: (low: number, lowInclusive: boolean, high: number, highInclusive: boolean, next: T) => void): void {
    if (this.ranges === undefined) throw new Error("a sealed RangeIndex no longer lists its ranges");
    for (const range of this.ranges) f(range.low, range.lowInclusive, range.high, range.highInclusive, range.next);
  }

  /** How many ranges it holds (before {@link seal}). */
  get rangeCount(): number {
    if (this.ranges === undefined) throw new Error("a sealed RangeIndex no longer counts its ranges");
    return this.ranges.length;
  }

  /** A new, unsealed index of the same ranges leading to `f(next)` (before {@link seal}). */
  map<U>(f: (next: T) => U): RangeIndex<U> {
    if (this.ranges === undefined) throw new Error("a sealed RangeIndex cannot be mapped");
    const mapped = new RangeIndex<U>();
    for (const range of this.ranges) mapped.add(range.low, range.lowInclusive, range.high, range.highInclusive, f(range.next));
    return mapped;
  }

  /** Builds the search structure; the index is read-only after this. */
  seal(): void {
    if (this.ranges === undefined) return;
    if (this.ranges.length <= SCANNED_RANGES) this.scanned = this.ranges;
    else {
      this.flat = buildFlat(this.ranges);
      if (this.flat === undefined) this.root = buildTree(this.ranges);
    }
    this.ranges = undefined;
  }

  /**
   * Writes into `out`, from index `at` (by default its end), the state of every range that
   * holds `value`, and returns the index after the last one written. `out` is never shrunk, so
   * that a caller reusing one array as a stack allocates nothing once it has grown.
   */
  search(value: number, out: T[], at = out.length): number {
    const scanned = this.scanned;
    if (scanned !== undefined) {
      for (let i = 0; i < scanned.length; i++) if (holds(scanned[i]!, value)) out[at++] = scanned[i]!.next;
      return at;
    }
    const flat = this.flat;
    if (flat !== undefined) {
      if (Number.isNaN(value)) return at;
      const region = regionOf(flat.bounds, value, countBoundsAtMost(flat as FlatRegions<unknown>, value));
      const soleNexts = flat.soleNexts;
      if (soleNexts !== undefined) {
        const next = soleNexts[region];
        if (next !== undefined) out[at++] = next;
        return at;
      }
      const { starts, members, nexts } = flat;
      for (let i = starts[region]!, end = starts[region + 1]!; i < end; i++) out[at++] = nexts[members[i]!]!;
      return at;
    }
    let node = this.root;
    while (node !== undefined) {
      if (Number.isNaN(node.center)) {
        for (const range of node.byLow) if (holds(range, value)) out[at++] = range.next;
        return at;
      }
      if (value < node.center) {
        // Every range here reaches up to the center, so it holds `value` when its low bound allows.
        for (const range of node.byLow) {
          if (range.low > value) break;
          if (holds(range, value)) out[at++] = range.next;
        }
        node = node.below;
      } else if (value > node.center) {
        for (const range of node.byHigh) {
          if (range.high < value) break;
          if (holds(range, value)) out[at++] = range.next;
        }
        node = node.above;
      } else {
        for (const range of node.byLow) if (holds(range, value)) out[at++] = range.next;
        return at;
      }
    }
    return at;
  }
}
