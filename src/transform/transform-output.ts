/**
 * Turns an evaluation result into the plain JSON a delivery carries: what
 * `JSON.parse(JSON.stringify(result))` gives, built directly. jsonata results hold sequences
 * (arrays with flags), objects without a prototype, `undefined` members, infinite numbers and
 * parts of the input itself; the copy drops the flags, makes `undefined` members vanish (null
 * in arrays), infinite numbers null and -0 zero, and never shares structure with the event.
 */
import { RelaybusError } from "../errors.js";
import type { JsonValue } from "../types.js";

/**
 * The JSON copy of `result`, or undefined when the result is nothing. A function anywhere in
 * it (or an object jsonata would take for one) is an error rather than a silently missing
 * field: a jsonata lambda also holds its environment, which JSON cannot copy.
 */
export function toJsonResult(result: unknown): JsonValue | undefined {
  return copy(result, false);
}

function copy(value: unknown, inArray: boolean): JsonValue | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) return null;
      return value === 0 ? 0 : value;
    case "undefined":
    case "symbol":
      return inArray ? null : undefined;
    case "function":
      throw functionInResult();
    case "bigint":
      // What JSON.stringify does with one.
      throw new TypeError("Do not know how to serialize a BigInt");
    default:
      break;
  }
  if (value === null) return null;
  if (isMarkedFunction(value as object)) throw functionInResult();
  if (Array.isArray(value)) {
    const items = value as unknown[];
    const out: JsonValue[] = new Array<JsonValue>(items.length);
    for (let i = 0; i < items.length; i++) out[i] = copy(items[i], true) as JsonValue;
    return out;
  }
  const source = value as Record<string, unknown>;
  const out: Record<string, JsonValue> = {};
  for (const key of Object.keys(source)) {
    const member = copy(source[key], false);
    if (member === undefined) continue;
    if (key === "__proto__") {
      // JSON.parse makes it an own property; an assignment would set the prototype instead.
      Object.defineProperty(out, key, {
        value: member,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      out[key] = member;
    }
  }
  return out;
}

function isMarkedFunction(value: object): boolean {
  const marked = value as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
  return marked._jsonata_function === true || marked._jsonata_lambda === true;
}

function functionInResult(): RelaybusError {
  return new RelaybusError(
    "InvalidTransform",
    "transform result holds a function, which is not JSON",
  );
}
