/**
 * JSONata transforms: compiled once at load, evaluated per delivery within a time budget.
 *
 * Two engines, chosen per expression at compile time. The common subset of JSONata (paths,
 * predicates, constructors, operators, conditions, blocks with variables, `$map`/`$filter`
 * with lambdas, the usual string and number functions) is compiled into plain closures from
 * jsonata's own syntax tree (transform-compiler.ts), 11-28 times faster than the
 * jsonata package in bench:transform and with the same output; anything else runs on the
 * jsonata package.
 * `CompiledTransform.engine` says which, and `fallbackReason` why not compiled.
 *
 * A compiled evaluation that fails is evaluated again on the engine, which reports the
 * failure: the error (its code, message and position) is then exactly jsonata's, at the cost
 * of a second evaluation in the failing case only.
 *
 * On the engine, why hooks and not a timer: jsonata 2 evaluates with `await` at every step,
 * but those are microtasks, so a `setTimeout` deadline would never get to run while an
 * expression loops. jsonata calls the function bound to `Symbol.for("jsonata.__evaluate_entry")`
 * before every node it evaluates (its own test suite's `timeboxExpression` helper uses it the
 * same way), so the budget is checked synchronously there: the clock, and the nesting depth
 * jsonata keeps on its per-call base frame. Awaiting the hook at every node also keeps the
 * native stack shallow, so a runaway recursion grows the depth counter, not the JS stack.
 * The compiled path has no recursion; it counts loop iterations and reads the clock every
 * 1,024, and caps sequences as the engine does.
 *
 * What neither can stop: one native call that runs long by itself, chiefly a regular
 * expression with catastrophic backtracking (`$match(data.s, /(a+)+$/)`), since JSONata
 * regexes are JavaScript's (and run on the engine). Stopping that would need a worker thread
 * per evaluation or a linear-time regex engine (jsonata's `RegexEngine` option); neither is
 * done yet.
 */
import jsonata from "jsonata";
import { RelaybusError } from "../errors.js";
import type { CloudEvent, JsonValue } from "../types.js";
import { compileJsonataAst, type CompiledExpression } from "./transform-compiler.js";
import {
  BudgetExceeded,
  budgetError,
  MAX_TRANSFORM_DEPTH,
  MAX_TRANSFORM_SEQUENCE,
  TRANSFORM_CACHE_SIZE,
  timeBudgetExceeded,
  transformSizeError,
  type EvaluationBudget,
} from "./transform-limits.js";
import { toJsonResult } from "./transform-output.js";

export { MAX_TRANSFORM_DEPTH, MAX_TRANSFORM_SEQUENCE, TRANSFORM_CACHE_SIZE };

/** Which engine evaluates a transform: compiled closures, or the jsonata package. */
export type TransformEngine = "compiled" | "jsonata";

/** A compiled JSONata expression. */
export interface CompiledTransform {
  /** The source expression. */
  readonly expression: string;
  /** `compiled` when the expression is in the compiled subset, else `jsonata`. */
  readonly engine: TransformEngine;
  /** Why the expression runs on the jsonata engine (absent when compiled). */
  readonly fallbackReason?: string;
  /**
   * Evaluates against `input` (the CloudEvent). Resolves to the result (undefined when the
   * expression yields nothing); rejects with `RelaybusError("TransformTimeout")` when the
   * evaluation runs past `timeoutMs` (message `transform evaluation exceeded N ms`), and with
   * `RelaybusError("InvalidTransform")` when it fails otherwise. A `CloudEvent` is accepted as
   * it is, since its optional attributes (typed `| undefined`) are exactly what JSON leaves out.
   */
  evaluate(input: JsonValue | CloudEvent, timeoutMs: number): Promise<JsonValue | undefined>;
}

/** Limits applied when compiling a transform. */
export interface TransformLimits {
  /** Largest expression, in UTF-8 bytes (`limits.maxTransformBytes`, default 8,192). */
  maxTransformBytes: number;
}

/**
 * The per-call budget travels as a binding of the evaluation frame. The name holds a space,
 * so no expression can reach it (JSONata variable names end at whitespace).
 */
const BUDGET_BINDING = "relaybus budget";
const ENTRY_HOOK = Symbol.for("jsonata.__evaluate_entry");

/** The frame jsonata hands to hooks: the base frame of the call carries depth and bindings. */
interface HookEnvironment {
  base: { depth: number; lookup(name: string): unknown };
}

const cache = new Map<string, CompiledTransform>();

/**
 * Compiles a JSONata expression, or returns the cached compilation of the same text: to
 * closures when it is in the compiled subset, else for the jsonata engine (see `engine`).
 * Throws `RelaybusError("InvalidTransform")` when it is larger than
 * `limits.maxTransformBytes` or does not compile; the message gives the position
 * (character offset from 1) and the token where jsonata stopped.
 */
export function compileTransform(expression: string, limits: TransformLimits): CompiledTransform {
  assertTransformSize(expression, limits);
  const cached = cache.get(expression);
  if (cached !== undefined) {
    // Re-insert so that Map order is recency order for the eviction below.
    cache.delete(expression);
    cache.set(expression, cached);
    return cached;
  }
  const compiled = compileUncached(expression, false);
  cache.set(expression, compiled);
  if (cache.size > TRANSFORM_CACHE_SIZE) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  return compiled;
}

/**
 * Compiles `expression` for the jsonata engine even when it is in the compiled subset, outside
 * the cache: how every transform ran before the compiled path. For benchmarks and for tests
 * comparing the two engines; deliveries use `compileTransform`.
 */
export function compileTransformOnEngine(
  expression: string,
  limits: TransformLimits,
): CompiledTransform {
  assertTransformSize(expression, limits);
  return compileUncached(expression, true);
}

function assertTransformSize(expression: string, limits: TransformLimits): void {
  const tooLarge = transformSizeError(expression, limits.maxTransformBytes);
  if (tooLarge !== undefined) throw tooLarge;
}

function compileUncached(expression: string, engineOnly: boolean): CompiledTransform {
  if (expression.trim() === "") {
    throw new RelaybusError("InvalidTransform", "transform is empty");
  }
  let expr: jsonata.Expression;
  try {
    expr = jsonata(expression, { sequence: MAX_TRANSFORM_SEQUENCE });
  } catch (error) {
    throw new RelaybusError(
      "InvalidTransform",
      `transform does not compile: ${describeJsonataError(error)}`,
      {
        cause: error,
      },
    );
  }
  // `assign` is typed for string names, but jsonata looks its hooks up by symbol.
  expr.assign(ENTRY_HOOK as unknown as string, checkBudget);
  const onEngine = (input: JsonValue | CloudEvent, budget: EvaluationBudget) =>
    evaluateOnEngine(expr, expression, input, budget);

  const outcome: ReturnType<typeof compileJsonataAst> = engineOnly
    ? { compiled: false, reason: "the jsonata engine was asked for" }
    : compileJsonataAst(expr.ast());
  if (!outcome.compiled) {
    return {
      expression,
      engine: "jsonata",
      fallbackReason: outcome.reason,
      evaluate: (input, timeoutMs) =>
        onEngine(input, { deadlineMs: Date.now() + timeoutMs, timeoutMs }),
    };
  }
  return {
    expression,
    engine: "compiled",
    evaluate: (input, timeoutMs) =>
      evaluateCompiled(outcome.run, onEngine, expression, input, timeoutMs),
  };
}

async function evaluateCompiled(
  run: CompiledExpression,
  onEngine: (
    input: JsonValue | CloudEvent,
    budget: EvaluationBudget,
  ) => Promise<JsonValue | undefined>,
  expression: string,
  input: JsonValue | CloudEvent,
  timeoutMs: number,
): Promise<JsonValue | undefined> {
  const budget: EvaluationBudget = { deadlineMs: Date.now() + timeoutMs, timeoutMs };
  let result: unknown;
  try {
    result = run(input, budget);
  } catch (error) {
    if (error instanceof BudgetExceeded) throw budgetError(error, expression);
    // The engine reports the failure as jsonata words it, within what is left of the budget.
    return onEngine(input, budget);
  }
  return toJsonResult(result);
}

async function evaluateOnEngine(
  expr: jsonata.Expression,
  expression: string,
  input: JsonValue | CloudEvent,
  budget: EvaluationBudget,
): Promise<JsonValue | undefined> {
  let result: unknown;
  try {
    result = await expr.evaluate(input, { [BUDGET_BINDING]: budget });
  } catch (error) {
    if (error instanceof BudgetExceeded) throw budgetError(error, expression);
    throw new RelaybusError(
      "InvalidTransform",
      `transform failed: ${describeJsonataError(error)}`,
      {
        cause: error,
        details: { expression },
      },
    );
  }
  return toJsonResult(result);
}

function checkBudget(_node: unknown, _input: unknown, environment: HookEnvironment): void {
  const base = environment.base;
  const budget = base.lookup(BUDGET_BINDING) as EvaluationBudget | undefined;
  // Absent only if jsonata ever evaluated outside our `evaluate`; nothing to enforce then.
  if (budget === undefined) return;
  if (Date.now() > budget.deadlineMs) throw timeBudgetExceeded(budget);
  if (base.depth > MAX_TRANSFORM_DEPTH) {
    throw new BudgetExceeded(
      `transform evaluation exceeded ${MAX_TRANSFORM_DEPTH} nested steps (runaway recursion?)`,
    );
  }
}

/** jsonata errors are objects with `code`, `position` (offset of the token's end) and `token`. */
function describeJsonataError(error: unknown): string {
  if (typeof error !== "object" || error === null) return String(error);
  const { message, position, token, code } = error as {
    message?: unknown;
    position?: unknown;
    token?: unknown;
    code?: unknown;
  };
  const parts: string[] = [];
  if (typeof position === "number") parts.push(`at position ${position}`);
  if (typeof token === "string" && token !== "") parts.push(`near ${JSON.stringify(token)}`);
  const where =
    parts.length > 0 ? ` (${parts.join(", ")}${typeof code === "string" ? `, ${code}` : ""})` : "";
  return `${typeof message === "string" ? message : "unknown error"}${where}`;
}
