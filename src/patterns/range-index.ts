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
 * search is a binary search over the bounds and a read of one region's list. Where no two
 * ranges overlap (a tenant's range, a /24 block each: the common case), each region has at
 * most one state, and the bounds and their regions' states are packed in blocks of 128 bytes
 * ({@link PackedRegions}): the block a search scans holds the state it ends on. The lists
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
  readonly nexts: readonly T[];
}

/** What a search of a packed block finds where no range holds the value. */
const NO_STATE = -1;

/** Bounds per block of {@link PackedRegions}: 8 doubles, then their 16 regions' states. */
const PACKED_BOUNDS = 8;
/** A block's size in 32-bit words: 8 doubles (16 words) and 16 states. */
const PACKED_BLOCK_WORDS = 32;
/** Where a block's states start, in 32-bit words from the block's start. */
const PACKED_STATES_AT = 16;

/**
 * The flat form when no region has two members and the states are numbers (the laid-out
 * machine's offsets): one buffer of 128-byte blocks. Block b holds bounds 8b to 8b+7 as
 * doubles (NaN past the last bound), then the states of the 16 regions from bound 8b's point
 * to the stretch after bound 8b+7 (regions 16b+1 to 16b+16), or {@link NO_STATE}. Region 0,
 * below every bound, is `belowAll`. A search finds its block's group of 8 among
 * `groupFirsts` (every 8th block's first bound: a small array that stays in cache), the block
 * in that group's line of `blockFirsts`, and then reads that one block: the state it ends on
 * sits beside the bounds it compared. A binary search over all blocks' firsts would read a
 * few lines of a larger array no cache keeps at 100,000 rules, and the general flat form
 * reads `starts`, `members` and `nexts` after the bounds, each a likely miss.
 */
interface PackedRegions {
  readonly groupFirsts: Float64Array;
  readonly blockFirsts: Float64Array;
  readonly bounds: Float64Array;
  readonly states: Int32Array;
  readonly belowAll: number;
}

/** Bounds per block of a flat index's two-level search: 16 doubles, two cache lines. */
const BOUNDS_PER_BLOCK = 16;

/**
 * How many bounds are at most `value`: the block is found among the blocks' first bounds
 * (a small array that stays in cache), then the bound within that one block.
 */
function countBoundsAtMost(flat: FlatRegions<unknown>, value: number): number {
  const lo = countBounds(flat.blockFirsts, value);
  if (lo === 0) return 0;
  const bounds = flat.bounds;
  let start = (lo - 1) * BOUNDS_PER_BLOCK + 1;
  const end = Math.min(lo * BOUNDS_PER_BLOCK, bounds.length);
  while (start < end && bounds[start]! <= value) start++;
  return start;
}

/** How many of the sorted `bounds` are at most `value`: a binary search. */
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
  const blockFirsts = new Float64Array(Math.ceil(bounds.length / BOUNDS_PER_BLOCK));
  for (let block = 0; block < blockFirsts.length; block++) blockFirsts[block] = bounds[block * BOUNDS_PER_BLOCK]!;
  return { bounds, blockFirsts, starts, members, nexts };
}

/** The packed form of a flat index, or undefined when a region has more than one member. */
function packFlat(flat: FlatRegions<number>): PackedRegions | undefined {
  const { bounds, starts, members, nexts } = flat;
  for (let region = 0; region + 1 < starts.length; region++) if (starts[region + 1]! - starts[region]! > 1) return undefined;
  const stateOf = (region: number): number => (starts[region + 1] === starts[region] ? NO_STATE : nexts[members[starts[region]!]!]!);
  const blockCount = Math.ceil(bounds.length / PACKED_BOUNDS);
  const buffer = new ArrayBuffer(blockCount * PACKED_BLOCK_WORDS * 4);
  const packedBounds = new Float64Array(buffer).fill(NaN);
  const states = new Int32Array(buffer);
  const blockFirsts = new Float64Array(blockCount);
  const groupFirsts = new Float64Array(Math.ceil(blockCount / PACKED_BOUNDS));
  for (let block = 0; block < blockCount; block++) {
    if (block % PACKED_BOUNDS === 0) groupFirsts[block / PACKED_BOUNDS] = bounds[block * PACKED_BOUNDS]!;
    const first = block * PACKED_BOUNDS;
    blockFirsts[block] = bounds[first]!;
    const boundsAt = (block * PACKED_BLOCK_WORDS) / 2;
    const statesAt = block * PACKED_BLOCK_WORDS + PACKED_STATES_AT;
    for (let k = 0; k < PACKED_BOUNDS; k++) {
      const i = first + k;
      const inBlock = i < bounds.length;
      if (inBlock) packedBounds[boundsAt + k] = bounds[i]!;
      states[statesAt + 2 * k] = inBlock ? stateOf(2 * i + 1) : NO_STATE;
      states[statesAt + 2 * k + 1] = inBlock ? stateOf(2 * i + 2) : NO_STATE;
    }
  }
  return { groupFirsts, blockFirsts, bounds: packedBounds, states, belowAll: stateOf(0) };
}

/** The state of the region `value` (not NaN) falls in, or {@link NO_STATE}. */
function searchPacked(packed: PackedRegions, value: number): number {
  const lo = countBounds(packed.groupFirsts, value);
  if (lo === 0) return packed.belowAll;
  // The group's blocks at most `value`: at least its first.
  const blockFirsts = packed.blockFirsts;
  let block = (lo - 1) * PACKED_BOUNDS;
  const groupEnd = Math.min(block + PACKED_BOUNDS, blockFirsts.length);
  while (block + 1 < groupEnd && blockFirsts[block + 1]! <= value) block++;
  const bounds = packed.bounds;
  const boundsAt = (block * PACKED_BLOCK_WORDS) / 2;
  // How many of the block's bounds are at most `value`: its first is; NaN padding never is.
  let k = 1;
  while (k < PACKED_BOUNDS && bounds[boundsAt + k]! <= value) k++;
  // The point of bound k - 1 when `value` is that bound, else the stretch after it.
  const region = bounds[boundsAt + k - 1] === value ? 2 * (k - 1) : 2 * (k - 1) + 1;
  return packed.states[block * PACKED_BLOCK_WORDS + PACKED_STATES_AT + region]!;
}

/** Ranges leading to a `T` each (the machine's next states). */
export class RangeIndex<T> {
  private ranges: Range<T>[] | undefined = [];
  private root: TreeNode<T> | undefined;
  private flat: FlatRegions<T> | undefined;
  private packed: PackedRegions | undefined;
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

  /**
   * Builds the search structure; the index is read-only after this. Only an index of numbers
   * (the laid-out machine's state offsets, never -1) is sealed: its packed form keeps them in
   * an `Int32Array`.
   */
  seal(this: RangeIndex<number>): void {
    if (this.ranges === undefined) return;
    if (this.ranges.length <= SCANNED_RANGES) this.scanned = this.ranges;
    else {
      const flat = buildFlat(this.ranges);
      if (flat === undefined) this.root = buildTree(this.ranges);
      else if ((this.packed = packFlat(flat)) === undefined) this.flat = flat;
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
    const packed = this.packed;
    if (packed !== undefined) {
      if (Number.isNaN(value)) return at;
      const next = searchPacked(packed, value);
      if (next !== NO_STATE) out[at++] = next as T;
      return at;
    }
    const flat = this.flat;
    if (flat !== undefined) {
      if (Number.isNaN(value)) return at;
      const region = regionOf(flat.bounds, value, countBoundsAtMost(flat as FlatRegions<unknown>, value));
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
