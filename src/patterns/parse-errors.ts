/**
 * How the pattern parser reports a problem: a `RelaybusError("InvalidEventPattern")` whose
 * message starts with the offending part's path (`detail.total[0].numeric: ...`) and whose
 * `details.path` holds it; plus the small helpers that describe what was found instead.
 *
 * @module
 */

import { RelaybusError } from "../errors.js";

/** Throws `EventPatternTooComplex` at `at`: a complexity limit, not a grammar error. */
export function failTooComplex(at: string, message: string): never {
  throw new RelaybusError("EventPatternTooComplex", `${at === "" ? "pattern" : at}: ${message}`, {
    details: { path: at },
  });
}

/** Throws `EventPatternTooLarge` at `at`: a size limit on a part of the pattern, not a grammar error. */
export function failTooLarge(at: string, message: string): never {
  throw new RelaybusError("EventPatternTooLarge", `${at === "" ? "pattern" : at}: ${message}`, {
    details: { path: at },
  });
}

/** Throws `InvalidEventPattern` for the part at path `at` ("" for the whole pattern). */
export function fail(at: string, message: string): never {
  throw new RelaybusError("InvalidEventPattern", `${at === "" ? "pattern" : at}: ${message}`, {
    details: { path: at },
  });
}

/** True for a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What a value is, for "got ..." in messages: `null`, `an array`, `string "x"`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** A value as JSON, for quoting an operand in a message. */
export function show(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The path of `key` under `at`. */
export function child(at: string, key: string): string {
  return at === "" ? key : `${at}.${key}`;
}
