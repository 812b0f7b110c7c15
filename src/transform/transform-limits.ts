/**
 * The limits every transform evaluation runs under, on either engine (the compiled closures or
 * the jsonata package), and the error that reports a budget overrun.
 */
import { RelaybusError } from "../errors.js";

/**
 * The `TransformTooLarge` error of an expression over `maxTransformBytes` UTF-8 bytes
 * (`limits.maxTransformBytes`), or undefined when it is within. Its own code, so that a
 * caller can tell "too big" from "does not compile".
 */
export function transformSizeError(expression: string, maxTransformBytes: number): RelaybusError | undefined {
  const bytes = Buffer.byteLength(expression, "utf8");
  if (bytes <= maxTransformBytes) return undefined;
  return new RelaybusError(
    "TransformTooLarge",
    `transform is ${bytes} bytes, larger than the limit of ${maxTransformBytes} (limits.maxTransformBytes)`,
    { details: { sizeBytes: bytes, maxTransformBytes } },
  );
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

/** The time budget of one evaluation. */
export interface EvaluationBudget {
  /** `Date.now()` past which the evaluation stops. */
  deadlineMs: number;
  /** The budget as given, for the message. */
  timeoutMs: number;
}

/**
 * Thrown by either engine when an evaluation runs past its budget; mapped to InvalidTransform
 * (nesting depth), or to TransformTimeout when it is the clock ({@link TimeBudgetExceeded}).
 */
export class BudgetExceeded extends Error {}

/** The {@link BudgetExceeded} of the clock: the evaluation ran past `transform.timeoutMs`. */
export class TimeBudgetExceeded extends BudgetExceeded {}

/** The message both engines give when the clock runs out. */
export function timeBudgetExceeded(budget: EvaluationBudget): TimeBudgetExceeded {
  return new TimeBudgetExceeded(`transform evaluation exceeded ${budget.timeoutMs} ms`);
}

/**
 * The error an evaluation stopped by its budget rejects with: `TransformTimeout` for the
 * clock (its own code, so that a slow expression can be told from a failing one), else
 * `InvalidTransform`. The message is the budget's own (`transform evaluation exceeded 100 ms`).
 */
export function budgetError(error: BudgetExceeded, expression: string): RelaybusError {
  if (error instanceof TimeBudgetExceeded) {
    return new RelaybusError("TransformTimeout", error.message, { details: { expression } });
  }
  return new RelaybusError("InvalidTransform", error.message, { details: { expression } });
}
