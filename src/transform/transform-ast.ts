/**
 * The syntax tree the transform compiler reads (jsonata's, after its parser's own processing),
 * what the compiled closures run in, and the check that keeps every node to the compiled
 * subset: any property the compiler does not know sends the expression to the engine.
 */
import type { RunState } from "./transform-values.js";

/**
 * Deepest expression tree the compiled path takes. The evaluation of a compiled expression
 * nests no deeper than its tree (there is no recursion), so this also bounds the native
 * stack; real transforms nest a few tens of levels.
 */
export const MAX_COMPILED_DEPTH = 256;

/** A node of jsonata's processed syntax tree, as far as the compiler reads it. */
export interface AstNode {
  readonly type: string;
  readonly value?: unknown;
  readonly position?: number;
  readonly steps?: AstNode[];
  readonly predicate?: AstFilter[];
  readonly stages?: AstFilter[];
  readonly keepArray?: boolean;
  readonly keepSingletonArray?: boolean;
  readonly consarray?: boolean;
  readonly lhs?: AstNode | [AstNode, AstNode][];
  readonly rhs?: AstNode;
  readonly expression?: AstNode;
  readonly expressions?: AstNode[];
  readonly condition?: AstNode;
  readonly then?: AstNode;
  readonly else?: AstNode;
  readonly procedure?: AstNode;
  readonly arguments?: AstNode[];
  readonly body?: AstNode;
  readonly signature?: unknown;
  readonly thunk?: boolean;
}

export interface AstFilter {
  readonly type: string;
  readonly expr: AstNode;
}

/**
 * Variables in scope: one frame per block that binds and per lambda call, the names and
 * values side by side (a few per frame, so a scan beats a dictionary object).
 */
export interface Env {
  readonly names: string[] | null;
  readonly values: unknown[] | null;
  readonly parent: Env | null;
  readonly run: RunState;
}

export type Evaluator = (input: unknown, env: Env) => unknown;

/** Compile-wide facts checked once the tree has been walked. */
export interface CompileState {
  hasBind: boolean;
  hasKeepArray: boolean;
}

/** Compiles a node as jsonata's `evaluate` runs it (the compiler's `compileNode`). */
export type CompileNode = (node: AstNode, state: CompileState, depth: number) => Evaluator;

/** Thrown while compiling a construct outside the subset; its message says which. */
export class Unsupported extends Error {}

export function unsupported(reason: string): never {
  throw new Unsupported(reason);
}

const COMMON_KEYS = ["type", "value", "position", "keepArray", "predicate", "stages"];
const ALLOWED_KEYS: Record<string, ReadonlySet<string>> = Object.fromEntries(
  Object.entries({
    path: ["type", "steps", "keepSingletonArray", "keepArray"],
    name: COMMON_KEYS,
    string: COMMON_KEYS,
    number: COMMON_KEYS,
    value: COMMON_KEYS,
    wildcard: COMMON_KEYS,
    descendant: COMMON_KEYS,
    variable: COMMON_KEYS,
    binary: [...COMMON_KEYS, "lhs", "rhs"],
    unary: [...COMMON_KEYS, "expression", "expressions", "lhs", "consarray"],
    condition: [...COMMON_KEYS, "condition", "then", "else"],
    block: [...COMMON_KEYS, "expressions", "consarray"],
    bind: ["type", "value", "position", "lhs", "rhs"],
    function: [...COMMON_KEYS, "name", "procedure", "arguments"],
    lambda: ["type", "arguments", "signature", "body", "position", "thunk"],
    apply: ["type", "value", "position", "lhs", "rhs", "keepArray"],
  }).map(([type, keys]) => [type, new Set(keys)]),
);

/** Properties the parser adds for constructs outside the subset, named for people. */
const NODE_KEY_REASONS: Record<string, string> = {
  group: "grouping (a{...})",
  focus: "a focus binding (@$x)",
  index: "an index binding (#$i)",
  tuple: "a focus or index binding (@, #)",
  ancestor: "the parent operator (%)",
  seekingParent: "the parent operator (%)",
};

/** Keeps a node to the subset: known type, known properties, not too deep. */
export function checkNode(node: AstNode, state: CompileState, depth: number): void {
  if (depth > MAX_COMPILED_DEPTH) unsupported(`nesting deeper than ${MAX_COMPILED_DEPTH}`);
  const allowed = ALLOWED_KEYS[node.type] ?? unsupported(`${node.type} expressions`);
  for (const key of Object.keys(node)) {
    if (!allowed.has(key))
      unsupported(NODE_KEY_REASONS[key] ?? `${node.type} expression with "${key}"`);
  }
  if (node.keepArray === true || node.keepSingletonArray === true) state.hasKeepArray = true;
}
