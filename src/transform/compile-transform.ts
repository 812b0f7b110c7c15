/**
 * JSONata transforms: compiled once at load, evaluated per delivery within a time budget.
 * (Contract only; the implementation lands with the rules work.)
 */
import type { JsonValue } from "../types.js";

/** A compiled JSONata expression. */
export interface CompiledTransform {
  /** The source expression. */
  readonly expression: string;
  /**
   * Evaluates against `input` (the CloudEvent). Resolves to the result (undefined when the
   * expression yields nothing); rejects with `RelaybusError("InvalidTransform")` when the
   * evaluation fails or runs past `timeoutMs`.
   */
  evaluate(input: JsonValue, timeoutMs: number): Promise<JsonValue | undefined>;
}
