/**
 * Compiles the common subset of JSONata into plain JavaScript closures, from the syntax tree
 * jsonata's own parser produces (`jsonata(text).ast()`), so the two can never disagree on what
 * an expression means. No text of the expression is ever turned into code: every node becomes
 * a closure over the values the parser read.
 *
 * Each closure does what jsonata's `evaluate` does for its node (predicates, then collapsing
 * a sequence of one to its item), and the helpers it calls are ports of jsonata 2.x's, quirks
 * and all, so the output is the engine's: transform-values.ts (sequences, truthiness, strings,
 * equality), transform-paths.ts, transform-constructors.ts, transform-operators.ts,
 * transform-functions.ts and transform-signature.ts (the built-ins and their argument rules).
 * What the compiled path is not sure to reproduce, it refuses at compile time with a reason,
 * and the whole expression then runs on the engine:
 *
 * - node types: regexes, parent `%`, order-by `^`, grouping `a{...}`, focus and index binds
 *   (`@$x`, `#$i`), transforms `|...|`, partial application, any unknown property on a node
 *   (transform-ast.ts);
 * - functions: any built-in outside transform-functions.ts, user-defined functions (a lambda
 *   anywhere but as the function argument of `$map`/`$filter`), function values, lambda
 *   signatures or repeated parameters, a binding that shadows a built-in, a tail call under a
 *   predicate;
 * - `:=` anywhere but directly in a block, and `[]` (keep array) together with `:=`
 *   (jsonata evaluates the items of array and object constructors concurrently, so only
 *   side-effect-free items are sure to give the same result in order);
 * - nesting deeper than MAX_COMPILED_DEPTH.
 *
 * At run time, a JSON object marked as a jsonata function (`"_jsonata_function": true`)
 * reaching a function call throws EngineRequired: the caller then runs the engine.
 *
 * Without recursion every loop runs over data, and each iteration ticks the budget: the
 * clock is read every 1,024 units of work (an iteration, or an item of a range or an append),
 * and sequences stop at MAX_TRANSFORM_SEQUENCE items as on the engine.
 */
import {
  checkNode,
  MAX_COMPILED_DEPTH,
  unsupported,
  Unsupported,
  type AstNode,
  type CompileState,
  type Env,
  type Evaluator,
} from "./transform-ast.js";
import { compileArrayConstructor, compileObjectConstructor } from "./transform-constructors.js";
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
  applyFilter,
  compileFilter,
  compilePath,
  evaluateDescendants,
  evaluateWildcard,
} from "./transform-paths.js";
import {
  assertNotMarkedFunction,
  assertNotMarkedThunk,
  boolize,
  collapse,
  createRunState,
  isNumeric,
  isSequence,
  JsonataCodeError,
  lookup,
  sequenceOf,
  toBoolean,
  type Sequence,
} from "./transform-values.js";

export { MAX_COMPILED_DEPTH };

/** A compiled expression: evaluates one input within a budget, synchronously. */
export type CompiledExpression = (input: unknown, budget: EvaluationBudget) => unknown;

/** The compiled expression, or why the expression must run on the engine. */
export type CompileOutcome =
  | { readonly compiled: true; readonly run: CompiledExpression }
  | { readonly compiled: false; readonly reason: string };

/** A call in tail position of a lambda: jsonata runs it after the body, with other context. */
class TailCall {
  constructor(
    readonly builtin: BuiltinFunction,
    readonly args: unknown[],
  ) {}
}

const NUMERIC_OPERATORS = new Set(["+", "-", "*", "/", "%"]);
const COMPARISON_OPERATORS = new Set(["<", "<=", ">", ">="]);

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

/** A node as jsonata's `evaluate` runs it: the node, its predicates, then the collapse. */
function compileNode(node: AstNode, state: CompileState, depth: number): Evaluator {
  checkNode(node, state, depth);
  const inner = compileInner(node, state, depth);
  const filters = (node.predicate ?? []).map((p) => compileFilter(p, state, depth, compileNode));
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
      return compilePath(node, state, depth, compileNode);
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

// ---- operators ------------------------------------------------------------------------------

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
      return compileArrayConstructor(node, state, depth, compileNode);
    case "{":
      return compileObjectConstructor(node, state, depth, compileNode);
    default:
      return unsupported(`the unary ${String(node.value)} operator`);
  }
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
