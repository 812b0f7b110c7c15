/**
 * The event side of the pattern machine: an event flattened once into its leaves (strings,
 * numbers, booleans, null), grouped by field path, keeping only the paths some pattern of the
 * machine names. Fields no pattern mentions are never walked, so a large `data` costs nothing
 * unless a rule looks into it.
 *
 * Paths are named as everywhere in patterns: keys joined with `.`, so `{"a": {"b": 1}}` and
 * `{"a.b": 1}` both give a leaf at `a.b`. Each leaf carries its *trail*: the array elements it
 * sits in, as flat `[arrayId, index, arrayId, index, ...]`, which the machine uses to keep
 * EventBridge's rule that fields under one array of objects come from the same element. An
 * array whose leaves all have one path cannot hold two conditions' leaves (an alternative has
 * one condition per path), so it is left out of the trails; most events then have no trails
 * at all, and the machine takes its fast path.
 *
 * One `EventLeaves` is reused for every event a machine matches: matching is synchronous and
 * never re-entered, so filling it again allocates almost nothing.
 *
 * @module
 */

/** The leaves of one path, valid for the collection whose `epoch` they carry. */
export interface PathLeaves {
  epoch: number;
  count: number;
  /** How many of the leaves have no trail: those are consistent with every choice. */
  free: number;
  readonly values: unknown[];
  /** `undefined` for a leaf outside any array that matters. */
  readonly trails: (readonly number[] | undefined)[];
}

const NO_TRAIL: readonly number[] = [];

/** Outermost arrays (and elements of each) whose trails are kept for reuse. */
const MAX_KEPT_TRAILS = 64;

/**
 * Where an event's key may lead: one node per field path, or prefix of one, that patterns
 * name. `children` maps every key that can come next, including keys that span several
 * segments (`"b.c"` under `a` for the path `a.b.c`), so walking an event never builds a string.
 */
interface PathNode {
  /** The id of the path this node names, or -1 when it is only a prefix. */
  readonly pathId: number;
  readonly children: Map<string, PathNode>;
  /** The same children as a list, in the order they were added. */
  readonly childList: { readonly key: string; readonly node: PathNode }[];
  /**
   * Whether leaves of two different paths can sit under this node (itself and its
   * descendants name two paths or more). An array here gets a trail only then: an array
   * whose leaves all have one path can never hold two conditions' leaves.
   */
  mixed: boolean;
  /** Visits an object found at this node: looks up each child's key in it. */
  visitObject: ObjectVisitor;
}

type ObjectVisitor = (record: Record<string, unknown>, trail: readonly number[]) => void;

/**
 * Up to this many children, a node's visitor is compiled into straight-line code that looks
 * each child's key up in the object (property loads V8 caches per object shape); above, it
 * walks the object's own keys and looks each up in `children`.
 */
const COMPILED_CHILDREN = 48;

function buildPathTree(paths: readonly string[]): { root: PathNode; nodes: PathNode[] } {
  const nodes = new Map<string, PathNode>();
  const ids = new Map(paths.map((path, id) => [path, id]));
  const nodeFor = (path: string): PathNode => {
    let node = nodes.get(path);
    if (node === undefined) {
      node = { pathId: ids.get(path) ?? -1, children: new Map(), childList: [], mixed: false, visitObject: () => {} };
      nodes.set(path, node);
    }
    return node;
  };
  const root = nodeFor("");
  for (const path of paths) {
    const segments = path.split(".");
    // Every run of segments i..j is a key that leads from the node of segments 0..i-1 to that of 0..j.
    for (let i = 0; i < segments.length; i++) {
      const from = nodeFor(segments.slice(0, i).join("."));
      for (let j = i; j < segments.length; j++) {
        const key = segments.slice(i, j + 1).join(".");
        if (from.children.has(key)) continue;
        const to = nodeFor(segments.slice(0, j + 1).join("."));
        from.children.set(key, to);
        from.childList.push({ key, node: to });
      }
    }
  }
  // A node is mixed when two or more paths start with its own (the root's: every path).
  const under = new Map<PathNode, number>();
  for (const path of paths) {
    const segments = path.split(".");
    for (let k = 0; k <= segments.length; k++) {
      const node = nodes.get(segments.slice(0, k).join("."))!;
      under.set(node, (under.get(node) ?? 0) + 1);
    }
  }
  for (const [node, count] of under) node.mixed = count >= 2;
  return { root, nodes: [...nodes.values()] };
}

export class EventLeaves {
  /** Current collection; `PathLeaves` from older ones read as empty. */
  epoch = 0;
  /** Leaves found in this collection, over all paths. */
  leafCount = 0;
  /** `byPath[pathId]`: the leaves of that path. */
  readonly byPath: PathLeaves[];

  private readonly root: PathNode;
  private nextArrayId = 0;
  /** Per array met in this collection: the path id of its first leaf, or -2 once leaves of two paths were seen. */
  private readonly arrayPaths: number[] = [];
  private anyTrail = false;
  /** `keptTrails[arrayId][index]`: see {@link outermostTrail}. */
  private readonly keptTrails: (readonly number[])[][] = [];

  /**
   * @param paths every field path the machine's patterns name, in path-id order.
   */
  constructor(paths: readonly string[]) {
    const tree = buildPathTree(paths);
    this.root = tree.root;
    for (const node of tree.nodes) node.visitObject = this.objectVisitor(node);
    this.byPath = paths.map(() => ({ epoch: -1, count: 0, free: 0, values: [], trails: [] }));
  }

  /** Collects the leaves of `event` (a JSON object; anything else has no fields). */
  collect(event: unknown): void {
    this.epoch++;
    this.leafCount = 0;
    this.nextArrayId = 0;
    this.anyTrail = false;
    if (typeof event !== "object" || event === null || Array.isArray(event)) return;
    this.root.visitObject(event as Record<string, unknown>, NO_TRAIL);
    if (this.anyTrail) this.pruneTrails();
  }

  /**
   * The visitor of objects found at `node`. With few children it is compiled: one property
   * load per child key (own keys only, as JSON has: a key `Object.prototype` also has is
   * checked with `Object.hasOwn`), then the value handed on by its kind. Keys reach the code
   * only as JSON string literals.
   */
  private objectVisitor(node: PathNode): ObjectVisitor {
    const list = node.childList;
    if (list.length === 0) return () => {};
    if (list.length > COMPILED_CHILDREN) {
      const children = node.children;
      return (record, trail) => {
        // Object.keys is served from V8's enum cache for parsed objects.
        const keys = Object.keys(record);
        for (let i = 0; i < keys.length; i++) {
          const child = children.get(keys[i]!);
          if (child !== undefined) this.visit(record[keys[i]!], child, trail);
        }
      };
    }
    const lines = ["let value;"];
    list.forEach(({ key, node: child }, index) => {
      const literal = JSON.stringify(key);
      lines.push(
        key in Object.prototype
          ? `value = Object.hasOwn(record, ${literal}) ? record[${literal}] : undefined;`
          : `value = record[${literal}];`,
      );
      const onScalar = child.pathId >= 0 ? `leaves.push(${child.pathId}, value, trail);` : "";
      lines.push(
        `if (typeof value === "object") { if (value !== null) leaves.nested(value, nodes[${index}], trail);${
          child.pathId >= 0 ? ` else leaves.push(${child.pathId}, null, trail);` : ""
        } }`,
      );
      if (onScalar !== "") {
        lines.push(`else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") ${onScalar}`);
      }
    });
    const make = new Function("leaves", "nodes", `return function visitObject(record, trail) {\n${lines.join("\n")}\n};`) as (
      leaves: EventLeaves,
      nodes: readonly PathNode[],
    ) => ObjectVisitor;
    return make(this, list.map((child) => child.node));
  }

  /** A value at `node` that is an object or an array (not null). */
  nested(value: object, node: PathNode, trail: readonly number[]): void {
    if (!Array.isArray(value)) {
      node.visitObject(value as Record<string, unknown>, trail);
      return;
    }
    if (!node.mixed) {
      // Every leaf below has one path: the array can never split two conditions, so no trail.
      for (let index = 0; index < value.length; index++) this.visit(value[index], node, trail);
      return;
    }
    const arrayId = this.nextArrayId++;
    this.arrayPaths[arrayId] = -1;
    for (let index = 0; index < value.length; index++) {
      this.visit(value[index], node, trail.length === 0 ? this.outermostTrail(arrayId, index) : [...trail, arrayId, index]);
    }
  }

  /**
   * The trail `[arrayId, index]` of an element of an array that sits in no other, made once
   * and kept for later events (trails are read only while one event is matched, and array ids
   * start again at 0 with each): most events' arrays are such, and matching then makes no
   * garbage for them.
   */
  private outermostTrail(arrayId: number, index: number): readonly number[] {
    if (arrayId >= MAX_KEPT_TRAILS || index >= MAX_KEPT_TRAILS) return [arrayId, index];
    const kept = (this.keptTrails[arrayId] ??= []);
    return (kept[index] ??= [arrayId, index]);
  }

  private visit(value: unknown, node: PathNode, trail: readonly number[]): void {
    if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      if (node.pathId >= 0) this.push(node.pathId, value, trail);
      return;
    }
    if (typeof value === "object") this.nested(value, node, trail); // not JSON (undefined, functions): absent
  }

  /** Adds one leaf; called by the compiled visitors too. */
  push(pathId: number, value: unknown, trail: readonly number[]): void {
    const leaves = this.byPath[pathId]!;
    if (leaves.epoch !== this.epoch) {
      leaves.epoch = this.epoch;
      leaves.count = 0;
      leaves.free = 0;
    }
    leaves.values[leaves.count] = value;
    if (trail.length === 0) {
      leaves.trails[leaves.count] = undefined;
      leaves.free++;
    } else {
      leaves.trails[leaves.count] = trail;
      this.anyTrail = true;
      for (let k = 0; k < trail.length; k += 2) {
        const arrayId = trail[k]!;
        const seen = this.arrayPaths[arrayId]!;
        if (seen === -1) this.arrayPaths[arrayId] = pathId;
        else if (seen !== pathId) this.arrayPaths[arrayId] = -2;
      }
    }
    leaves.count++;
    this.leafCount++;
  }

  /** Drops from every trail the arrays whose leaves all share one path; a trail left empty makes its leaf free. */
  private pruneTrails(): void {
    const shared = this.arrayPaths;
    for (const leaves of this.byPath) {
      if (leaves.epoch !== this.epoch) continue;
      for (let i = 0; i < leaves.count; i++) {
        const trail = leaves.trails[i];
        if (trail === undefined) continue;
        let keep = 0;
        for (let k = 0; k < trail.length; k += 2) if (shared[trail[k]!] === -2) keep++;
        if (keep === trail.length / 2) continue;
        if (keep === 0) {
          leaves.trails[i] = undefined;
          leaves.free++;
          continue;
        }
        const pruned: number[] = [];
        for (let k = 0; k < trail.length; k += 2) if (shared[trail[k]!] === -2) pruned.push(trail[k]!, trail[k + 1]!);
        leaves.trails[i] = pruned;
      }
    }
  }
}
