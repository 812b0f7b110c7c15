/**
 * JSONata's operators on evaluated operands, ported from jsonata 2.x: the same type checks
 * and error codes (T2001, T2009...), the same `undefined` rules (a missing operand makes
 * arithmetic and comparison yield nothing, equality false).
 */
import { MAX_TRANSFORM_SEQUENCE } from "./transform-limits.js";
import {
  charge,
  isDeepEqual,
  isNumeric,
  JsonataCodeError,
  toJsonataString,
  type RunState,
  type Sequence,
} from "./transform-values.js";

export type NumericOperator = "+" | "-" | "*" | "/" | "%";
export type ComparisonOperator = "<" | "<=" | ">" | ">=";

export function numeric(lhs: unknown, rhs: unknown, op: NumericOperator): number | undefined {
  if (lhs !== undefined && !isNumeric(lhs)) throw new JsonataCodeError("T2001", lhs);
  if (rhs !== undefined && !isNumeric(rhs)) throw new JsonataCodeError("T2002", rhs);
  if (lhs === undefined || rhs === undefined) return undefined;
  switch (op) {
    case "+":
      return lhs + rhs;
    case "-":
      return lhs - rhs;
    case "*":
      return lhs * rhs;
    case "/":
      return lhs / rhs;
    case "%":
      return lhs % rhs;
  }
}

export function equality(lhs: unknown, rhs: unknown, negate: boolean): boolean {
  if (lhs === undefined || rhs === undefined) return false;
  return negate ? !isDeepEqual(lhs, rhs) : isDeepEqual(lhs, rhs);
}

export function comparison(
  lhs: unknown,
  rhs: unknown,
  op: ComparisonOperator,
): boolean | undefined {
  const ltype = typeof lhs;
  const rtype = typeof rhs;
  const lcomparable = ltype === "undefined" || ltype === "string" || ltype === "number";
  const rcomparable = rtype === "undefined" || rtype === "string" || rtype === "number";
  if (!lcomparable || !rcomparable) throw new JsonataCodeError("T2010");
  if (ltype === "undefined" || rtype === "undefined") return undefined;
  if (ltype !== rtype) throw new JsonataCodeError("T2009");
  const l = lhs as string | number;
  const r = rhs as string | number;
  switch (op) {
    case "<":
      return l < r;
    case "<=":
      return l <= r;
    case ">":
      return l > r;
    case ">=":
      return l >= r;
  }
}

export function concatenate(lhs: unknown, rhs: unknown): string {
  const left = lhs === undefined ? "" : (toJsonataString(lhs) as string);
  const right = rhs === undefined ? "" : (toJsonataString(rhs) as string);
  return left.concat(right);
}

export function includes(lhs: unknown, rhs: unknown): boolean {
  if (lhs === undefined || rhs === undefined) return false;
  const items: unknown[] = Array.isArray(rhs) ? rhs : [rhs];
  for (let i = 0; i < items.length; i++) if (items[i] === lhs) return true;
  return false;
}

/** `[a..b]`: a sequence of integers, with jsonata's two size guards. */
export function range(lhs: unknown, rhs: unknown, run: RunState): Sequence | undefined {
  if (lhs !== undefined && !Number.isInteger(lhs)) throw new JsonataCodeError("T2003", lhs);
  if (rhs !== undefined && !Number.isInteger(rhs)) throw new JsonataCodeError("T2004", rhs);
  if (lhs === undefined || rhs === undefined) return undefined;
  const from = lhs as number;
  const to = rhs as number;
  if (from > to) return undefined;
  const size = to - from + 1;
  if (size > 1e7) throw new JsonataCodeError("D2014", size);
  if (size > MAX_TRANSFORM_SEQUENCE) throw new JsonataCodeError("D2015", size);
  charge(run, size);
  const result: Sequence = new Array<unknown>(size);
  for (let item = from, index = 0; item <= to; item++, index++) result[index] = item;
  result.sequence = true;
  return result;
}
