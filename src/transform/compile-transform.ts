/**
 * JSONata transforms: compiled once at load, evaluated per delivery within a time budget.
 *
 * Why hooks and not a timer: jsonata 2 evaluates with `await` at every step, but those are
 * microtasks, so a `setTimeout` deadline would never get to run while an expression loops.
 * jsonata calls the function bound to `Symbol.for("jsonata.__evaluate_entry")` before every
 * node it evaluates (its own test suite's `timeboxExpression` helper uses it the same way),
 * so the budget is checked synchronously there: the clock, and the nesting depth jsonata
 * keeps on its per-call base frame. Awaiting the hook at every node also keeps the native
 * stack shallow, so a runaway recursion grows the depth counter, not the JS stack.
 *
 * What the hooks cannot stop: one native call that runs long by itself, chiefly a regular
 * expression with catastrophic backtracking (`$match(data.s, /(a+)+$/)`), since JSONata
 * regexes are JavaScript's. Stopping that would need a worker thread per evaluation or a
 * linear-time regex engine (jsonata's `RegexEngine` option); neither is done yet.
 */
import jsonata from "jsonata";
import { RelaybusError } from "../errors.js";
import type { CloudEvent, JsonValue } from "../types.js";

/** A compiled JSONata expression. */
export interface CompiledTransform {
  /** The source expression. */
  readonly expression: string;
  /**
   * Evaluates against `input` (the CloudEvent). Resolves to the result (undefined when the
   * expression yields nothing); rejects with `RelaybusError("InvalidTransform")` when the
   * evaluation fails or runs past `timeoutMs`. A `CloudEvent` is accepted as it is, since
   * its optional attributes (typed `| undefined`) are exactly what JSON leaves out.
   */
  evaluate(input: JsonValue | CloudEvent, timeoutMs: number): Promise<JsonValue | undefined>;
}

/** Limits applied when compiling a transform. */
export interface TransformLimits {
  /** Largest expression, in UTF-8 bytes (`limits.maxTransformBytes`, default 8,192). */
  maxTransformBytes: number;
}

/**
 * Deepest nesting of evaluation steps one evaluation may reach. A step is one node of the
 * expression tree, so a recursive function uses several per call; 2,000 allows recursion
 * hundreds of calls deep while stopping `$f($f)` long before memory becomes a problem.
 */
export const MAX_TRANSFORM_DEPTH = 2_000;

/**
 * Longest sequence one evaluation may build (jsonata's own `sequence` guard). A range such
 * as `[1..9999999]` is built in one native loop the time budget cannot interrupt; this
 * caps it. No transform of a 256 KB event needs a million items.
 */
export const MAX_TRANSFORM_SEQUENCE = 1_000_000;

/** Most compiled expressions kept in the cache; the least recently used go first. */
export const TRANSFORM_CACHE_SIZE = 1_000;

/**
 * The per-call budget travels as a binding of the evaluation frame. The name holds a space,
 * so no expression can reach it (JSONata variable names end at whitespace).
 */
const BUDGET_BINDING = "relaybus budget";
const ENTRY_HOOK = Symbol.for("jsonata.__evaluate_entry");

interface Budget {
  deadlineMs: number;
  timeoutMs: number;
}

/** Thrown inside jsonata by the hook; mapped to InvalidTransform by `evaluate`. */
class BudgetExceeded extends Error {}

/** The frame jsonata hands to hooks: the base frame of the call carries depth and bindings. */
interface HookEnvironment {
  base: { depth: number; lookup(name: string): unknown };
}

const cache = new Map<string, CompiledTransform>();

/**
 * Compiles a JSONata expression, or returns the cached compilation of the same text.
 * Throws `RelaybusError("InvalidTransform")` when it is larger than
 * `limits.maxTransformBytes` or does not compile; the message gives the position
 * (character offset from 1) and the token where jsonata stopped.
 */
export function compileTransform(expression: string, limits: TransformLimits): CompiledTransform {
  const bytes = Buffer.byteLength(expression, "utf8");
  if (bytes > limits.maxTransformBytes) {
    throw new RelaybusError(
      "InvalidTransform",
      `transform is ${bytes} bytes, larger than the limit of ${limits.maxTransformBytes} (limits.maxTransformBytes)`,
    );
  }
  const cached = cache.get(expression);
  if (cached !== undefined) {
    // Re-insert so that Map order is recency order for the eviction below.
    cache.delete(expression);
    cache.set(expression, cached);
    return cached;
  }
  const compiled = compileUncached(expression);
  cache.set(expression, compiled);
  if (cache.size > TRANSFORM_CACHE_SIZE) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  return compiled;
}

function compileUncached(expression: string): CompiledTransform {
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

  return {
    expression,
    async evaluate(
      input: JsonValue | CloudEvent,
      timeoutMs: number,
    ): Promise<JsonValue | undefined> {
      const budget: Budget = { deadlineMs: Date.now() + timeoutMs, timeoutMs };
      let result: unknown;
      try {
        result = await expr.evaluate(input, { [BUDGET_BINDING]: budget });
      } catch (error) {
        if (error instanceof BudgetExceeded) {
          throw new RelaybusError("InvalidTransform", error.message, { details: { expression } });
        }
        throw new RelaybusError(
          "InvalidTransform",
          `transform failed: ${describeJsonataError(error)}`,
          {
            cause: error,
            details: { expression },
          },
        );
      }
      return toJson(result);
    },
  };
}

function checkBudget(_node: unknown, _input: unknown, environment: HookEnvironment): void {
  const base = environment.base;
  const budget = base.lookup(BUDGET_BINDING) as Budget | undefined;
  // Absent only if jsonata ever evaluated outside our `evaluate`; nothing to enforce then.
  if (budget === undefined) return;
  if (Date.now() > budget.deadlineMs) {
    throw new BudgetExceeded(`transform evaluation exceeded ${budget.timeoutMs} ms`);
  }
  if (base.depth > MAX_TRANSFORM_DEPTH) {
    throw new BudgetExceeded(
      `transform evaluation exceeded ${MAX_TRANSFORM_DEPTH} nested steps (runaway recursion?)`,
    );
  }
}

/**
 * jsonata results may be its internal sequences (arrays with flags) or functions; the body
 * of a delivery must be plain JSON, so the result is copied through JSON, and a function
 * anywhere in it is an error rather than a silently missing field (a jsonata lambda also
 * holds its environment, which JSON cannot copy).
 */
function toJson(result: unknown): JsonValue | undefined {
  if (result === undefined) return undefined;
  const text = JSON.stringify(result, (_key, value: unknown) => {
    if (isFunctionValue(value)) {
      throw new RelaybusError(
        "InvalidTransform",
        "transform result holds a function, which is not JSON",
      );
    }
    return value;
  });
  return text === undefined ? undefined : (JSON.parse(text) as JsonValue);
}

function isFunctionValue(value: unknown): boolean {
  if (typeof value === "function") return true;
  if (typeof value !== "object" || value === null) return false;
  const marked = value as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
  return marked._jsonata_function === true || marked._jsonata_lambda === true;
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
