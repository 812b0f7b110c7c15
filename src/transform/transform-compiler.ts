/**
 * Compiles the common subset of JSONata into plain JavaScript closures, from the syntax tree
 * jsonata's own parser produces (`jsonata(text).ast()`), so the two can never disagree on what
 * an expression means. No text of the expression is ever turned into code: every node becomes
 * a closure over the values the parser read.
 *
 * Each closure does what jsonata's `evaluate` does for its node (predicates, then collapsing
 * a sequence of one to its item), and the helpers it calls are ports of jsonata's, quirks and
 * all, so the output is the engine's. What the compiled path is not sure to reproduce, it
 * refuses at compile time with a reason, and the whole expression then runs on the engine:
 *
 * - node types: regexes, parent `%`, order-by `^`, grouping `a{...}`, focus and index binds
 *   (`@$x`, `#$i`), transforms `|...|`, partial application, any unknown property on a node;
 * - functions: any built-in outside transform-functions.ts, user-defined functions (a lambda
 *   anywhere but as the function argument of `$map`/`$filter`), function values, lambda
 *   signatures, a binding that shadows a built-in;
 * - `:=` anywhere but directly in a block, and `[]` (keep array) together with `:=`
 *   (jsonata evaluates the items of array and object constructors concurrently, so only
 *   side-effect-free items are sure to give the same result in order);
 * - nesting deeper than MAX_COMPILED_DEPTH.
 *
 * Without recursion every loop runs over data, and each iteration ticks the budget: the
 * clock is read every 1,024 iterations, and sequences stop at MAX_TRANSFORM_SEQUENCE items as
 * on the engine.
 */
import {
  BUILTIN_FUNCTIONS,
  JSONATA_FUNCTION_NAMES,
  type BuiltinFunction,
  type Callable,
} from "./transform-functions.js";
import type { EvaluationBudget } from "./transform-limits.js";
import {
  comparison,
  concatenate,
  equality,
  includes,
  numeric,
  range,
  type ComparisonOperator,
  type NumericOperator,
} from "./transform-operators.js";
import {
  append,
  assertNotMarkedFunction,
  assertNotMarkedThunk,
  boolize,
  collapse,
  createRunState,
  createSequence,
  flatten,
  isArrayOfNumbers,
  isFunction,
  isNumeric,
  isSequence,
  JsonataCodeError,
  lookup,
  pushItem,
  sequenceOf,
  tick,
  toBoolean,
  type RunState,
  type Sequence,
} from "./transform-values.js";

/**
 * Deepest expression tree the compiled path takes. The evaluation of a compiled expression
 * nests no deeper than its tree (there is no recursion), so this also bounds the native
 * stack; real transforms nest a few tens of levels.
 */
export const MAX_COMPILED_DEPTH = 256;

/** A compiled expression: evaluates one input within a budget, synchronously. */
export type CompiledExpression = (input: unknown, budget: EvaluationBudget) => unknown;

/** The compiled expression, or why the expression must run on the engine. */
export type CompileOutcome =
  | { readonly compiled: true; readonly run: CompiledExpression }
  | { readonly compiled: false; readonly reason: string };

/** A node of jsonata's processed syntax tree, as far as the compiler reads it. */
interface AstNode {
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

interface AstFilter {
  readonly type: string;
  readonly expr: AstNode;
}

/**
 * Variables in scope: one frame per block that binds and per lambda call, the names and
 * values side by side (a few per frame, so a scan beats a dictionary object).
 */
interface Env {
  readonly names: string[] | null;
  readonly values: unknown[] | null;
  readonly parent: Env | null;
  readonly run: RunState;
}

type Evaluator = (input: unknown, env: Env) => unknown;

/** A predicate `[...]`: a literal index, or an expression tried on every item. */
interface CompiledFilter {
  readonly index: number | undefined;
  readonly evaluate: Evaluator | undefined;
}

interface CompiledStep {
  readonly evaluate: Evaluator;
  readonly stages: readonly CompiledFilter[];
  readonly consarray: boolean;
}

/** A call in tail position of a lambda: jsonata runs it after the body, with other context. */
class TailCall {
  constructor(
    readonly builtin: BuiltinFunction,
    readonly args: unknown[],
  ) {}
}

class Unsupported extends Error {}

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

const NUMERIC_OPERATORS = new Set(["+", "-", "*", "/", "%"]);
const COMPARISON_OPERATORS = new Set(["<", "<=", ">", ">="]);

/** Compile-wide facts checked once the tree has been walked. */
interface CompileState {
  hasBind: boolean;
  hasKeepArray: boolean;
}

/**
 * Compiles jsonata's processed syntax tree, or says why it stays on the engine.
 * `ast` is what `jsonata(text).ast()` returns.
 */
export function compileJsonataAst(ast: unknown): CompileOutcome {
  const state: CompileState = { hasBind: false, hasKeepArray: false };
  let root: Evaluator;
  try {
    root = compileNode(ast as AstNode, state, 0);
    if (state.hasBind && state.hasKeepArray) {
      throw new Unsupported("[] (keep array) together with := bindings");
    }
  } catch (error) {
    if (error instanceof Unsupported) return { compiled: false, reason: error.message };
    throw error;
  }
  return {
    compiled: true,
    run(input, budget) {
      const run = createRunState(input, budget);
      let context = input;
      // jsonata wraps an array input so that it is treated as one value.
      if (Array.isArray(input) && !isSequence(input)) {
        const wrapped = sequenceOf(input);
        wrapped.outerWrapper = true;
        context = wrapped;
      }
      return root(context, { names: null, values: null, parent: null, run });
    },
  };
}

function unsupported(reason: string): never {
  throw new Unsupported(reason);
}

function checkNode(node: AstNode, state: CompileState, depth: number): void {
  if (depth > MAX_COMPILED_DEPTH) unsupported(`nesting deeper than ${MAX_COMPILED_DEPTH}`);
  const allowed = ALLOWED_KEYS[node.type] ?? unsupported(`${node.type} expressions`);
  for (const key of Object.keys(node)) {
    if (!allowed.has(key))
      unsupported(NODE_KEY_REASONS[key] ?? `${node.type} expression with "${key}"`);
  }
  if (node.keepArray === true || node.keepSingletonArray === true) state.hasKeepArray = true;
}

/** A node as jsonata's `evaluate` runs it: the node, its predicates, then the collapse. */
function compileNode(node: AstNode, state: CompileState, depth: number): Evaluator {
  checkNode(node, state, depth);
  const inner = compileInner(node, state, depth);
  const filters = (node.predicate ?? []).map((p) => compileFilter(p, state, depth));
  const keepArray = node.keepArray === true;
  if (filters.length === 0 && !keepArray && neverSequence(node)) return inner;
  if (filters.length === 0) return (input, env) => collapse(inner(input, env), keepArray);
  return (input, env) => {
    let result = inner(input, env);
    for (const filter of filters) result = applyFilter(filter, result, env);
    return collapse(result, keepArray);
  };
}

/** Nodes whose own result is never a jsonata sequence, so collapsing it changes nothing. */
function neverSequence(node: AstNode): boolean {
  switch (node.type) {
    case "string":
    case "number":
    case "value":
      return true;
    case "binary":
      return node.value !== "..";
    case "unary":
      return true;
    default:
      return false;
  }
}

function compileInner(node: AstNode, state: CompileState, depth: number): Evaluator {
  switch (node.type) {
    case "string":
    case "number":
    case "value": {
      const value = node.value;
      return () => value;
    }
    case "name": {
      const name = node.value as string;
      return (input, env) => lookup(input, name, env.run);
    }
    case "variable":
      return compileVariable(node);
    case "wildcard":
      return evaluateWildcard;
    case "descendant":
      return evaluateDescendants;
    case "path":
      return compilePath(node, state, depth);
    case "binary":
      return compileBinary(node, state, depth);
    case "unary":
      return compileUnary(node, state, depth);
    case "condition":
      return compileCondition(node, state, depth, false);
    case "block":
      return compileBlock(node, state, depth, false);
    case "function":
      return compileCall(node, state, depth, undefined, false);
    case "apply":
      return compileApply(node, state, depth);
    case "bind":
      return unsupported(":= outside a block's top level");
    case "lambda":
      return unsupported("a function value (lambda) outside $map/$filter");
    default:
      return unsupported(`${node.type} expressions`);
  }
}

function compileVariable(node: AstNode): Evaluator {
  const name = node.value as string;
  if (name === "") {
    return (input) =>
      input !== null && (input as Sequence | undefined)?.outerWrapper === true
        ? (input as Sequence)[0]
        : input;
  }
  if (name === "$") return (_input, env) => env.run.root;
  if (JSONATA_FUNCTION_NAMES.has(name)) unsupported(`the function $${name} as a value`);
  return (_input, env) => lookupVariable(env, name);
}

function lookupVariable(env: Env, name: string): unknown {
  for (let frame: Env | null = env; frame !== null; frame = frame.parent) {
    if (frame.names === null) continue;
    const at = frame.names.indexOf(name);
    if (at !== -1) return (frame.values as unknown[])[at];
  }
  return undefined;
}

function checkBindingName(name: string): void {
  if (name === "" || name === "$" || JSONATA_FUNCTION_NAMES.has(name)) {
    unsupported(`a binding of $${name}, which shadows a built-in`);
  }
}

// ---- predicates -----------------------------------------------------------------------------

function compileFilter(filter: AstFilter, state: CompileState, depth: number): CompiledFilter {
  if (filter.type !== "filter") unsupported(`${filter.type} stages`);
  // jsonata takes a literal number as an index without evaluating it (or its own predicates).
  if (filter.expr.type === "number") {
    checkNode(filter.expr, state, depth + 1);
    return { index: filter.expr.value as number, evaluate: undefined };
  }
  return { index: undefined, evaluate: compileNode(filter.expr, state, depth + 1) };
}

/** jsonata's `evaluateFilter`. */
function applyFilter(filter: CompiledFilter, input: unknown, env: Env): unknown {
  let results: unknown = createSequence();
  const items: unknown[] = Array.isArray(input) ? input : sequenceOf(input);
  if (filter.evaluate === undefined) {
    let index = Math.floor(filter.index as number);
    if (index < 0) index = items.length + index;
    const item = items[index];
    if (item !== undefined) {
      if (Array.isArray(item)) results = item;
      else pushItem(results as Sequence, item);
    }
    return results;
  }
  for (let index = 0; index < items.length; index++) {
    tick(env.run);
    const item = items[index];
    let res = filter.evaluate(item, env);
    if (isNumeric(res)) res = [res];
    if (isArrayOfNumbers(res)) {
      for (const wanted of res) {
        let at = Math.floor(wanted);
        if (at < 0) at = items.length + at;
        if (at === index) pushItem(results as Sequence, item);
      }
    } else if (toBoolean(res)) {
      pushItem(results as Sequence, item);
    }
  }
  return results;
}

// ---- paths ----------------------------------------------------------------------------------

function compilePath(node: AstNode, state: CompileState, depth: number): Evaluator {
  const stepNodes = node.steps ?? [];
  const steps: CompiledStep[] = stepNodes.map((step) => ({
    evaluate: compileNode(step, state, depth + 1),
    stages: (step.stages ?? []).map((s) => compileFilter(s, state, depth + 1)),
    consarray: step.consarray === true,
  }));
  const first = stepNodes[0] ?? unsupported("an empty path");
  const firstIsVariable = first.type === "variable";
  const keepSingletonArray = node.keepSingletonArray === true;
  const generic: Evaluator = (input, env) =>
    evaluatePath(steps, firstIsVariable, keepSingletonArray, input, env);

  // The common case, `data.customer.name` or `$v.sku` over objects, without sequences.
  const simple =
    !keepSingletonArray &&
    node.keepArray !== true &&
    stepNodes.every(
      (step, i) =>
        (step.type === "name" || (i === 0 && step.type === "variable")) &&
        step.keepArray !== true &&
        step.predicate === undefined &&
        step.stages === undefined,
    );
  if (!simple) return generic;
  const names = stepNodes.slice(firstIsVariable ? 1 : 0).map((step) => step.value as string);
  const firstVariable = firstIsVariable ? (steps[0] as CompiledStep).evaluate : undefined;
  return (input, env) => {
    let value = firstVariable === undefined ? input : firstVariable(input, env);
    if (value === undefined) return undefined;
    for (const name of names) {
      if (!isPlainObject(value)) return generic(input, env);
      value = Object.prototype.hasOwnProperty.call(value, name)
        ? (value as Record<string, unknown>)[name]
        : undefined;
      if (value === undefined) return undefined;
    }
    if (isSequence(value)) return generic(input, env);
    return value;
  };
}

function isPlainObject(value: unknown): value is object {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !isFunction(value);
}

/** jsonata's `evaluatePath`, without tuple streams. */
function evaluatePath(
  steps: readonly CompiledStep[],
  firstIsVariable: boolean,
  keepSingletonArray: boolean,
  input: unknown,
  env: Env,
): unknown {
  let inputSequence: unknown = Array.isArray(input) && !firstIsVariable ? input : sequenceOf(input);
  let resultSequence: unknown;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as CompiledStep;
    if (i === 0 && step.consarray) {
      resultSequence = step.evaluate(inputSequence, env);
    } else {
      resultSequence = evaluateStep(step, inputSequence, env, i === steps.length - 1);
    }
    // jsonata reads `.length` of whatever the step gave (a string included; null throws).
    if (resultSequence === undefined || (resultSequence as { length: unknown }).length === 0) {
      break;
    }
    inputSequence = resultSequence;
  }
  if (keepSingletonArray) {
    let kept = resultSequence as Sequence;
    if (Array.isArray(kept) && kept.cons === true && kept.sequence !== true) {
      kept = sequenceOf(kept);
    }
    // Throws on undefined or a primitive, as jsonata's (strict-mode) assignment does.
    kept.keepSingleton = true;
    resultSequence = kept;
  }
  return resultSequence;
}

/** jsonata's `evaluateStep`: the step on every item, then one level of flattening. */
function evaluateStep(step: CompiledStep, input: unknown, env: Env, lastStep: boolean): unknown {
  const items = input as ArrayLike<unknown>;
  const result = createSequence();
  for (let i = 0; i < items.length; i++) {
    tick(env.run);
    let res = step.evaluate(items[i], env);
    for (const stage of step.stages) res = applyFilter(stage, res, env);
    if (res !== undefined) pushItem(result, res);
  }
  const only = result[0];
  if (lastStep && result.length === 1 && Array.isArray(only) && !isSequence(only)) return only;
  const flattened = createSequence();
  for (const res of result) {
    if (!Array.isArray(res) || (res as Sequence).cons === true) {
      pushItem(flattened, res);
    } else {
      for (const value of res as unknown[]) pushItem(flattened, value);
    }
  }
  return flattened;
}

function evaluateWildcard(input: unknown, env: Env): unknown {
  let results: unknown[] = createSequence();
  let target = input;
  if (Array.isArray(target) && (target as Sequence).outerWrapper === true && target.length > 0) {
    target = target[0];
  }
  if (target !== null && typeof target === "object" && !isFunction(target)) {
    for (const key of Object.keys(target)) {
      tick(env.run);
      const value = (target as Record<string, unknown>)[key];
      // After an append, `results` is a plain array: its push has no size guard, as in jsonata.
      if (Array.isArray(value)) results = append(results, flatten(value), env.run) as unknown[];
      else results.push(value);
    }
  }
  return results;
}

function evaluateDescendants(input: unknown, env: Env): unknown {
  if (input === undefined) return undefined;
  const results = createSequence();
  const recurse = (value: unknown): void => {
    tick(env.run);
    if (Array.isArray(value)) {
      value.forEach((member: unknown) => recurse(member));
      return;
    }
    results.push(value);
    if (value !== null && typeof value === "object" && !isFunction(value)) {
      for (const key of Object.keys(value)) recurse((value as Record<string, unknown>)[key]);
    }
  };
  recurse(input);
  return results.length === 1 ? results[0] : results;
}

// ---- operators and constructors -------------------------------------------------------------

function compileBinary(node: AstNode, state: CompileState, depth: number): Evaluator {
  const op = node.value as string;
  const lhs = compileNode(node.lhs as AstNode, state, depth + 1);
  const rhs = compileNode(node.rhs as AstNode, state, depth + 1);
  if (op === "and") return (input, env) => boolize(lhs(input, env)) && boolize(rhs(input, env));
  if (op === "or") return (input, env) => boolize(lhs(input, env)) || boolize(rhs(input, env));
  if (NUMERIC_OPERATORS.has(op)) {
    const numericOp = op as NumericOperator;
    return (input, env) => numeric(lhs(input, env), rhs(input, env), numericOp);
  }
  if (COMPARISON_OPERATORS.has(op)) {
    const comparisonOp = op as ComparisonOperator;
    return (input, env) => comparison(lhs(input, env), rhs(input, env), comparisonOp);
  }
  switch (op) {
    case "=":
      return (input, env) => equality(lhs(input, env), rhs(input, env), false);
    case "!=":
      return (input, env) => equality(lhs(input, env), rhs(input, env), true);
    case "&":
      return (input, env) => concatenate(lhs(input, env), rhs(input, env));
    case "in":
      return (input, env) => includes(lhs(input, env), rhs(input, env));
    case "..":
      return (input, env) => range(lhs(input, env), rhs(input, env), env.run);
    default:
      return unsupported(`the ${op} operator`);
  }
}

function compileUnary(node: AstNode, state: CompileState, depth: number): Evaluator {
  switch (node.value) {
    case "-": {
      const operand = compileNode(node.expression as AstNode, state, depth + 1);
      return (input, env) => {
        const value = operand(input, env);
        if (value === undefined) return undefined;
        if (isNumeric(value)) return -value;
        throw new JsonataCodeError("D1002", value);
      };
    }
    case "[":
      return compileArrayConstructor(node, state, depth);
    case "{":
      return compileObjectConstructor(node, state, depth);
    default:
      return unsupported(`the unary ${String(node.value)} operator`);
  }
}

function compileArrayConstructor(node: AstNode, state: CompileState, depth: number): Evaluator {
  const itemNodes = node.expressions ?? [];
  const items = itemNodes.map((item) => compileNode(item, state, depth + 1));
  // jsonata keeps an item written as an array constructor whole, and flattens any other.
  const keepWhole = itemNodes.map((item) => item.value === "[");
  const consarray = node.consarray === true;
  return (input, env) => {
    let result: unknown[] = [];
    for (let i = 0; i < items.length; i++) {
      const value = (items[i] as Evaluator)(input, env);
      if (value === undefined) continue;
      if (keepWhole[i] === true) result.push(value);
      else result = append(result, value, env.run) as unknown[];
    }
    if (consarray) {
      Object.defineProperty(result, "cons", {
        enumerable: false,
        configurable: false,
        value: true,
      });
    }
    return result;
  };
}

interface CompiledPair {
  readonly key: Evaluator;
  readonly value: Evaluator;
}

function compileObjectConstructor(node: AstNode, state: CompileState, depth: number): Evaluator {
  const pairNodes = node.lhs as [AstNode, AstNode][];
  const pairs: CompiledPair[] = pairNodes.map(([key, value]) => ({
    key: compileNode(key, state, depth + 1),
    value: compileNode(value, state, depth + 1),
  }));
  const generic: Evaluator = (input, env) => evaluateObject(pairs, input, env);

  // Literal keys, all different and none reserved: one object per input, no grouping.
  const literalKeys = pairNodes.map(([key]) =>
    key.type === "string" &&
    Object.keys(key).every((k) => ["type", "value", "position"].includes(k))
      ? (key.value as string)
      : undefined,
  );
  const staticKeys =
    literalKeys.every(
      (k) => k !== undefined && k !== "_jsonata_lambda" && k !== "_jsonata_function",
    ) && new Set(literalKeys).size === literalKeys.length;
  if (!staticKeys) return generic;
  const keys = literalKeys as string[];
  const values = pairs.map((pair) => pair.value);
  // jsonata's objects have no prototype; one is only visible through a "__proto__" key, as the
  // prototype itself. Objects with a prototype are much faster to build.
  const bare = keys.includes("__proto__");
  return (input, env) => {
    if (Array.isArray(input)) return generic(input, env);
    const result = (bare ? Object.create(null) : {}) as Record<string, unknown>;
    for (let i = 0; i < values.length; i++) {
      const value = (values[i] as Evaluator)(input, env);
      if (value !== undefined) result[keys[i] as string] = value;
    }
    return result;
  };
}

/** jsonata's `evaluateGroupExpression` for an object constructor (no tuple streams). */
function evaluateObject(pairs: readonly CompiledPair[], input: unknown, env: Env): unknown {
  const result = Object.create(null) as Record<string, unknown>;
  const groups = Object.create(null) as Record<string, { data: unknown; exprIndex: number }>;
  const items: unknown[] = Array.isArray(input) ? input : sequenceOf(input);
  // jsonata pushes onto the input itself, an array of the document included.
  if (items.length === 0) items.push(undefined);
  for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
    tick(env.run);
    const item = items[itemIndex];
    for (let pairIndex = 0; pairIndex < pairs.length; pairIndex++) {
      const key = (pairs[pairIndex] as CompiledPair).key(item, env);
      if (typeof key !== "string" && key !== undefined) throw new JsonataCodeError("T1003", key);
      if (key === undefined) continue;
      if (key === "_jsonata_lambda" || key === "_jsonata_function") {
        throw new JsonataCodeError("D1013", key);
      }
      const group = groups[key];
      if (group !== undefined) {
        if (group.exprIndex !== pairIndex) throw new JsonataCodeError("D1009", key);
        group.data = append(group.data, item, env.run);
      } else {
        groups[key] = { data: item, exprIndex: pairIndex };
      }
    }
  }
  for (const key of Object.keys(groups)) {
    const group = groups[key] as { data: unknown; exprIndex: number };
    const value = (pairs[group.exprIndex] as CompiledPair).value(group.data, env);
    if (value !== undefined) result[key] = value;
  }
  return result;
}

// ---- conditions, blocks, functions ----------------------------------------------------------

function compileCondition(
  node: AstNode,
  state: CompileState,
  depth: number,
  tail: boolean,
): Evaluator {
  const branch = (n: AstNode) =>
    tail ? compileTail(n, state, depth + 1) : compileNode(n, state, depth + 1);
  const condition = compileNode(node.condition as AstNode, state, depth + 1);
  const then = branch(node.then as AstNode);
  const otherwise = node.else === undefined ? undefined : branch(node.else);
  return (input, env) => {
    if (toBoolean(condition(input, env))) return then(input, env);
    return otherwise === undefined ? undefined : otherwise(input, env);
  };
}

function compileBlock(node: AstNode, state: CompileState, depth: number, tail: boolean): Evaluator {
  const expressions = node.expressions ?? [];
  const binds = expressions.some((e) => e.type === "bind");
  const compiled = expressions.map((expression, i) => {
    if (expression.type === "bind") return compileBind(expression, state, depth + 1);
    return tail && i === expressions.length - 1
      ? compileTail(expression, state, depth + 1)
      : compileNode(expression, state, depth + 1);
  });
  return (input, env) => {
    // A block is a scope; one that binds nothing needs no frame of its own.
    const frame: Env = binds ? { names: [], values: [], parent: env, run: env.run } : env;
    let result: unknown;
    for (const expression of compiled) result = expression(input, frame);
    return result;
  };
}

function compileBind(node: AstNode, state: CompileState, depth: number): Evaluator {
  checkNode(node, state, depth);
  state.hasBind = true;
  const target = node.lhs as AstNode;
  if (target.type !== "variable") unsupported(":= to something other than a variable");
  const name = target.value as string;
  checkBindingName(name);
  const value = compileNode(node.rhs as AstNode, state, depth + 1);
  return (input, env) => {
    const bound = value(input, env);
    const names = env.names as string[];
    const values = env.values as unknown[];
    const at = names.indexOf(name);
    if (at === -1) {
      names.push(name);
      values.push(bound);
    } else {
      values[at] = bound;
    }
    return bound;
  };
}

/**
 * A node in tail position of a lambda body. jsonata's parser turns a call there into a thunk
 * (tail-call optimisation) that runs after the body with the caller's context, skipping the
 * call's own `[]` and collapse; conditions and blocks pass the tail position on.
 */
function compileTail(node: AstNode, state: CompileState, depth: number): Evaluator {
  if (!containsThunk(node)) return compileNode(node, state, depth);
  checkNode(node, state, depth);
  if (node.predicate !== undefined || node.keepArray === true) {
    unsupported("a tail call inside a filtered expression");
  }
  switch (node.type) {
    case "lambda": {
      const call = node.body as AstNode;
      if (call.type !== "function") unsupported("a tail thunk of something other than a call");
      checkNode(call, state, depth + 1);
      return compileCall(call, state, depth + 1, undefined, true);
    }
    case "condition":
      return compileCondition(node, state, depth, true);
    case "block":
      return compileBlock(node, state, depth, true);
    default:
      return unsupported(`a tail call in a ${node.type} expression`);
  }
}

function containsThunk(node: AstNode): boolean {
  if (node.type === "lambda") return node.thunk === true;
  if (node.type === "condition") {
    return (
      containsThunk(node.then as AstNode) || (node.else !== undefined && containsThunk(node.else))
    );
  }
  if (node.type === "block") {
    const last = node.expressions?.[node.expressions.length - 1];
    return last !== undefined && containsThunk(last);
  }
  return false;
}

function compileApply(node: AstNode, state: CompileState, depth: number): Evaluator {
  const target = node.rhs as AstNode;
  if (target.type !== "function") unsupported("~> to something other than a function call");
  checkNode(target, state, depth + 1);
  const lhs = compileNode(node.lhs as AstNode, state, depth + 1);
  // jsonata invokes the call directly: its own predicates and [] are not applied.
  return compileCall(target, state, depth + 1, lhs, false);
}

/**
 * A call of a built-in. `applyTo` is the left side of `~>`, passed as the first argument.
 * In tail position the call is returned as a TailCall for the lambda to run.
 */
function compileCall(
  node: AstNode,
  state: CompileState,
  depth: number,
  applyTo: Evaluator | undefined,
  tail: boolean,
): Evaluator {
  const procedure = node.procedure as AstNode;
  if (
    procedure.type !== "variable" ||
    Object.keys(procedure).some((k) => !["type", "value", "position"].includes(k))
  ) {
    unsupported("a call of something other than a named function");
  }
  const name = procedure.value as string;
  const builtin = BUILTIN_FUNCTIONS.get(name) ?? unsupported(`the function $${name}`);
  const argumentNodes = node.arguments ?? [];
  const offset = applyTo === undefined ? 0 : 1;
  if (argumentNodes.length + offset > builtin.maxCompiledArguments) {
    unsupported(`$${name} with arguments`);
  }
  const args = argumentNodes.map((arg, i) => {
    const takesLambda = builtin.lambdaArguments.includes(i + offset);
    if (arg.type === "lambda") {
      if (!takesLambda) unsupported(`a function value passed to $${name}`);
      // jsonata wraps function arguments of a call, but passes a tail call's as they are.
      return compileLambda(arg, state, depth + 1, tail);
    }
    if (takesLambda) unsupported(`$${name} with a function that is not written in place`);
    return compileNode(arg, state, depth + 1);
  });
  const evaluateArgs = (input: unknown, env: Env): unknown[] => {
    const values: unknown[] = applyTo === undefined ? [] : [applyTo(input, env)];
    for (const arg of args) {
      const value = arg(input, env);
      // jsonata wraps a function argument of a call (not a tail call's) and reads its arity.
      if (!tail) assertNotMarkedFunction(value);
      values.push(value);
    }
    return values;
  };
  if (tail) return (input, env) => new TailCall(builtin, evaluateArgs(input, env));
  return (input, env) => {
    const args = builtin.signature.validate(evaluateArgs(input, env), input);
    const result = builtin.implementation(args, env.run);
    assertNotMarkedThunk(result);
    return result;
  };
}

/**
 * A lambda written as the function argument of `$map`/`$filter`. Its body sees the context
 * where it was written and its parameters in a new frame. A call in tail position runs after
 * the body with the context jsonata's `apply` has there: none (null) when the lambda was
 * wrapped as an argument of a call, the lambda's own when it was passed as it is.
 */
function compileLambda(node: AstNode, state: CompileState, depth: number, raw: boolean): Evaluator {
  checkNode(node, state, depth);
  if (node.signature !== undefined) unsupported("a lambda with a signature");
  if (node.thunk === true) unsupported("a thunk as an argument");
  const params = (node.arguments ?? []).map((param) => {
    if (param.type !== "variable") unsupported("a lambda parameter that is not a variable");
    const name = param.value as string;
    checkBindingName(name);
    return name;
  });
  // jsonata binds parameters in order, so the last of two with one name wins; a scan would not.
  if (new Set(params).size !== params.length) unsupported("a lambda with a repeated parameter");
  const body = compileTail(node.body as AstNode, state, depth + 1);
  return (input, env) => makeCallable(body, params, raw, input, env);
}

function makeCallable(
  body: Evaluator,
  params: string[],
  raw: boolean,
  input: unknown,
  env: Env,
): Callable {
  // Arrows passed straight on, not named by a declaration: tsx (esbuild's keepNames) would
  // otherwise wrap every one it creates in a naming call.
  return withArity((value: unknown, index: unknown, whole: unknown) => {
    const frame: Env = { names: params, values: [value, index, whole], parent: env, run: env.run };
    let result = body(input, frame);
    if (result instanceof TailCall) {
      const { builtin, args } = result;
      result = builtin.implementation(
        builtin.signature.validate(args, raw ? input : null),
        env.run,
      );
    }
    assertNotMarkedThunk(result);
    return result;
  }, params.length);
}

function withArity(
  func: (value: unknown, index: unknown, whole: unknown) => unknown,
  arity: number,
): Callable {
  const callable = func as Callable;
  callable.arity = arity;
  return callable;
}
