/**
 * Problems found in rules, located by JSON pointer and, for rule files, by file and line.
 */
import type { ErrorCode } from "../errors.js";

/**
 * A problem inside one JSON document (a rule file or an API rule body), located by its
 * JSON pointer (RFC 6901, `/rules/0/pattern/data/total`), with the error code it maps to.
 */
export interface PointerProblem {
  pointer: string;
  message: string;
  /**
   * `InvalidRule`, `InvalidEventPattern` or `InvalidTransform`; a limit's own code
   * (`EventPatternTooLarge`, `TransformTooLarge`, `TooManyTargets`, `TooManyRules`).
   */
  code: ErrorCode;
}

/** A problem in a rule file: where it is and what is wrong. */
export interface RuleProblem {
  /** The file, as the rules directory was given joined with its name (`rules/orders.yaml`). */
  file: string;
  /** 1-based line of the offending key or item (1 when the file itself is at fault). */
  line: number;
  /** JSON pointer into the file's document; `""` for the whole document. */
  pointer: string;
  message: string;
}

/** Formats a problem as `file:line: pointer: message` (the pointer `/` for the whole file). */
export function formatRuleProblem(problem: RuleProblem): string {
  return `${problem.file}:${problem.line}: ${problem.pointer === "" ? "/" : problem.pointer}: ${problem.message}`;
}

/** Builds a JSON pointer from path segments, escaping `~` and `/` as RFC 6901 says. */
export function toPointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

/** Splits a JSON pointer into its unescaped segments (`""` gives none). */
export function fromPointer(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}
