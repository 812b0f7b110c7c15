/**
 * The JSONata built-in functions the compiled path implements, each a port of the jsonata
 * 2.x function of the same name with its signature. An expression calling any other
 * function runs on the engine. Functions taking a function (`$map`, `$filter`) receive the
 * compiled lambdas as JavaScript functions with an `arity`, as jsonata's own wrappers.
 */
import { parseSignature, type Signature } from "./transform-signature.js";
import {
  append,
  codePointLength,
  createSequence,
  evaluationTime,
  isDeepEqual,
  isFunction,
  isNumeric,
  isSequence,
  JsonataCodeError,
  lookup,
  objectKeys,
  pushItem,
  tick,
  toBoolean,
  toJsonataString,
  type RunState,
  type Sequence,
} from "./transform-values.js";

/**
 * A function value passed to `$map`/`$filter`: a compiled lambda. jsonata passes the index and
 * the array only to a lambda that declares them; a compiled lambda binds only the parameters
 * it declares, so it is always called with all three.
 */
export type Callable = ((value: unknown, index: unknown, whole: unknown) => unknown) & {
  arity: number;
};

/** A built-in: its jsonata signature and implementation (arguments already validated). */
export interface BuiltinFunction {
  readonly name: string;
  readonly signature: Signature;
  readonly implementation: (args: unknown[], run: RunState) => unknown;
  /** Positions (from 0) of arguments that must be lambdas, for higher-order functions. */
  readonly lambdaArguments: readonly number[];
  /** Calls with more arguments than this run on the engine (`$now(picture)`). */
  readonly maxCompiledArguments: number;
}

/**
 * Every function name jsonata binds. A reference to one of these as a value, or a binding
 * that would shadow one, sends the expression to the engine.
 */
export const JSONATA_FUNCTION_NAMES: ReadonlySet<string> = new Set([
  "sum", "count", "max", "min", "average", "string", "substring", "substringBefore",
  "substringAfter", "lowercase", "uppercase", "length", "trim", "pad", "match", "contains",
  "replace", "split", "join", "formatNumber", "formatBase", "formatInteger", "parseInteger",
  "number", "floor", "ceil", "round", "abs", "sqrt", "power", "random", "boolean", "not", "map",
  "zip", "filter", "single", "reduce", "sift", "keys", "lookup", "append", "exists", "spread",
  "merge", "reverse", "each", "error", "assert", "type", "sort", "shuffle", "distinct",
  "base64encode", "base64decode", "encodeUrlComponent", "encodeUrl", "decodeUrlComponent",
  "decodeUrl", "eval", "toMillis", "fromMillis", "clone", "now", "millis",
]); // prettier-ignore

const str = (value: unknown) => value as string;
const num = (value: unknown) => value as number;

function substring(text: string | undefined, startAt: number, length: number | undefined) {
  if (text === undefined) return undefined;
  const chars = Array.from(text);
  let start = startAt;
  if (chars.length + start < 0) start = 0;
  if (length !== undefined) {
    if (length <= 0) return "";
    const end = start >= 0 ? start + length : chars.length + start + length;
    return chars.slice(start, end).join("");
  }
  return chars.slice(start).join("");
}

function trim(text: string | undefined) {
  if (text === undefined) return undefined;
  let result = text.replace(/[ \t\n\r]+/gm, " ");
  if (result.charAt(0) === " ") result = result.substring(1);
  if (result.charAt(result.length - 1) === " ") result = result.substring(0, result.length - 1);
  return result;
}

function pad(text: string | undefined, widthIn: number, padWith: string | undefined) {
  if (text === undefined) return undefined;
  const char = padWith === undefined || padWith.length === 0 ? " " : padWith;
  const width = Math.trunc(widthIn);
  const padLength = Math.abs(width) - codePointLength(text);
  // As jsonata compares: a NaN width pads nothing.
  if (!(padLength > 0)) return text;
  let padding = new Array(padLength + 1).join(char);
  if (char.length > 1) padding = substring(padding, 0, padLength) ?? "";
  return width > 0 ? text + padding : padding + text;
}

function toNumber(arg: unknown) {
  if (arg === undefined) return undefined;
  if (typeof arg === "number") return arg;
  if (
    typeof arg === "string" &&
    /^-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?$/.test(arg) &&
    !Number.isNaN(parseFloat(arg)) &&
    Number.isFinite(Number(arg))
  ) {
    return parseFloat(arg);
  }
  if (typeof arg === "string" && /^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$/.test(arg)) {
    return Number(arg);
  }
  if (arg === true) return 1;
  if (arg === false) return 0;
  throw new JsonataCodeError("D3030", arg);
}

/** jsonata's round-half-to-even, shifting the decimal point in the string form. */
function round(arg: number | undefined, precision: number | undefined) {
  if (arg === undefined) return undefined;
  let value = arg;
  if (precision) {
    const parts = value.toString().split("e");
    value = +`${parts[0]}e${parts[1] ? +parts[1] + precision : precision}`;
  }
  let result = Math.round(value);
  const diff = result - value;
  if (Math.abs(diff) === 0.5 && Math.abs(result % 2) === 1) result = result - 1;
  if (precision) {
    const parts = result.toString().split("e");
    result = +`${parts[0]}e${parts[1] ? +parts[1] - precision : -precision}`;
  }
  if (Object.is(result, -0)) result = 0;
  return result;
}

function keys(arg: unknown): Sequence {
  let result = createSequence();
  if (Array.isArray(arg)) {
    const merged: Record<string, boolean> = Object.create(null) as Record<string, boolean>;
    for (const item of arg as unknown[]) for (const key of keys(item)) merged[str(key)] = true;
    result = keys(merged);
  } else if (arg !== null && typeof arg === "object" && !isFunction(arg)) {
    for (const key of objectKeys(arg)) pushItem(result, key);
  }
  return result;
}

function spread(arg: unknown, run: RunState): unknown {
  let result: unknown = createSequence();
  if (Array.isArray(arg)) {
    for (const item of arg as unknown[]) result = append(result, spread(item, run), run);
  } else if (
    arg !== null &&
    typeof arg === "object" &&
    (arg as { _jsonata_lambda?: unknown })._jsonata_lambda !== true
  ) {
    for (const key of objectKeys(arg)) {
      const single = Object.create(null) as Record<string, unknown>;
      single[key] = (arg as Record<string, unknown>)[key];
      pushItem(result as Sequence, single);
    }
  } else {
    result = arg;
  }
  return result;
}

function distinct(arr: unknown, run: RunState) {
  if (arr === undefined) return undefined;
  if (!Array.isArray(arr) || arr.length <= 1) return arr;
  const results: unknown[] = isSequence(arr) ? createSequence() : [];
  for (const value of arr as unknown[]) {
    let includes = false;
    for (const seen of results) {
      tick(run);
      if (isDeepEqual(value, seen)) {
        includes = true;
        break;
      }
    }
    if (!includes) {
      if (isSequence(results)) pushItem(results, value);
      else results.push(value);
    }
  }
  return results;
}

function typeOf(value: unknown) {
  if (value === undefined) return undefined;
  if (value === null) return "null";
  if (isNumeric(value)) return "number";
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "boolean";
  if (Array.isArray(value)) return "array";
  if (isFunction(value)) return "function";
  return "object";
}

function map(arr: unknown[] | undefined, func: Callable, run: RunState) {
  if (arr === undefined) return undefined;
  const result = createSequence();
  for (let i = 0; i < arr.length; i++) {
    tick(run);
    const res = func(arr[i], i, arr);
    if (res !== undefined) pushItem(result, res);
  }
  return result;
}

function filter(arr: unknown[] | undefined, func: Callable, run: RunState) {
  if (arr === undefined) return undefined;
  const result = createSequence();
  for (let i = 0; i < arr.length; i++) {
    tick(run);
    const entry = arr[i];
    if (toBoolean(func(entry, i, arr))) pushItem(result, entry);
  }
  return result;
}

/**
 * A missing pattern of `$split`/`$replace` is neither a string nor a matcher function: jsonata
 * then calls `undefined.apply` and fails with a TypeError, which this mirrors.
 */
function notAMatcher(): TypeError {
  return new TypeError("Cannot read properties of undefined (reading 'apply')");
}

function urlCodec(codec: (text: string) => string) {
  return (text: string | undefined) => {
    if (text === undefined) return undefined;
    try {
      return codec(text);
    } catch {
      throw new JsonataCodeError("D3140", text);
    }
  };
}

type Implementation = BuiltinFunction["implementation"];

function define(
  name: string,
  signature: string,
  implementation: Implementation,
  options: { lambdaArguments?: number[]; maxCompiledArguments?: number } = {},
): [string, BuiltinFunction] {
  return [
    name,
    {
      name,
      signature: parseSignature(signature),
      implementation,
      lambdaArguments: options.lambdaArguments ?? [],
      maxCompiledArguments: options.maxCompiledArguments ?? Number.POSITIVE_INFINITY,
    },
  ];
}

const sumOf = (args: unknown) => {
  if (args === undefined) return undefined;
  let total = 0;
  for (const value of args as number[]) total += value;
  return total;
};

/** The built-ins of the compiled path, by name (without the `$`). */
/* eslint-disable prefer-spread -- jsonata calls Math.max/min with apply; kept, so a huge array
   fails the same way on both engines */
export const BUILTIN_FUNCTIONS: ReadonlyMap<string, BuiltinFunction> = new Map([
  define("sum", "<a<n>:n>", ([a]) => sumOf(a)),
  define("count", "<a:n>", ([a]) => (a === undefined ? 0 : (a as unknown[]).length)),
  define("max", "<a<n>:n>", ([a]) => {
    const values = a as number[] | undefined;
    return values === undefined || values.length === 0 ? undefined : Math.max.apply(Math, values);
  }),
  define("min", "<a<n>:n>", ([a]) => {
    const values = a as number[] | undefined;
    return values === undefined || values.length === 0 ? undefined : Math.min.apply(Math, values);
  }),
  /* eslint-enable prefer-spread */
  define("average", "<a<n>:n>", ([a]) => {
    const values = a as number[] | undefined;
    if (values === undefined || values.length === 0) return undefined;
    return (sumOf(values) as number) / values.length;
  }),
  define("string", "<x-b?:s>", ([value, prettify]) =>
    toJsonataString(value, prettify === undefined ? false : (prettify as boolean)),
  ),
  define("substring", "<s-nn?:s>", ([s, start, length]) =>
    substring(s as string | undefined, num(start), length as number | undefined),
  ),
  define("substringBefore", "<s-s:s>", ([s, chars]) => {
    if (s === undefined) return undefined;
    const pos = str(s).indexOf(str(chars));
    return pos > -1 ? str(s).substring(0, pos) : s;
  }),
  define("substringAfter", "<s-s:s>", ([s, chars]) => {
    if (s === undefined) return undefined;
    const pos = str(s).indexOf(str(chars));
    return pos > -1 ? str(s).substring(pos + str(chars).length) : s;
  }),
  define("lowercase", "<s-:s>", ([s]) => (s === undefined ? undefined : str(s).toLowerCase())),
  define("uppercase", "<s-:s>", ([s]) => (s === undefined ? undefined : str(s).toUpperCase())),
  define("length", "<s-:n>", ([s]) => (s === undefined ? undefined : codePointLength(str(s)))),
  define("trim", "<s-:s>", ([s]) => trim(s as string | undefined)),
  define("pad", "<s-ns?:s>", ([s, width, char]) =>
    pad(s as string | undefined, num(width), char as string | undefined),
  ),
  // With a string token only: the compiled path has no regular expressions or function values.
  define("contains", "<s-(sf):b>", ([s, token]) => {
    if (s === undefined || token === undefined) return undefined;
    return str(s).indexOf(str(token)) !== -1;
  }),
  define("split", "<s-(sf)n?:a<s>>", ([s, separator, limit]) => {
    if (s === undefined) return undefined;
    if ((limit as number) < 0) throw new JsonataCodeError("D3020", limit);
    if (!(limit === undefined || num(limit) > 0)) return [];
    if (typeof separator !== "string") throw notAMatcher();
    return str(s).split(separator, num(limit));
  }),
  define("join", "<a<s>s?:s>", ([strs, separator]) => {
    if (strs === undefined) return undefined;
    return (strs as string[]).join(separator === undefined ? "" : str(separator));
  }),
  define("replace", "<s-(sf)(sf)n?:s>", ([s, pattern, replacement, limit]) => {
    if (s === undefined) return undefined;
    if (pattern === "") throw new JsonataCodeError("D3010", pattern);
    if ((limit as number) < 0) throw new JsonataCodeError("D3011", limit);
    const text = str(s);
    if (!(limit === undefined || num(limit) > 0)) return text;
    if (typeof pattern !== "string") throw notAMatcher();
    let result = "";
    let position = 0;
    let count = 0;
    let index = text.indexOf(str(pattern), position);
    while (index !== -1 && (limit === undefined || count < num(limit))) {
      result += text.substring(position, index);
      result += str(replacement);
      position = index + str(pattern).length;
      count++;
      index = text.indexOf(str(pattern), position);
    }
    return result + text.substring(position);
  }),
  define("number", "<(nsb)-:n>", ([value]) => toNumber(value)),
  define("floor", "<n-:n>", ([n]) => (n === undefined ? undefined : Math.floor(num(n)))),
  define("ceil", "<n-:n>", ([n]) => (n === undefined ? undefined : Math.ceil(num(n)))),
  define("round", "<n-n?:n>", ([n, precision]) =>
    round(n as number | undefined, precision as number | undefined),
  ),
  define("abs", "<n-:n>", ([n]) => (n === undefined ? undefined : Math.abs(num(n)))),
  define("sqrt", "<n-:n>", ([n]) => {
    if (n === undefined) return undefined;
    if (num(n) < 0) throw new JsonataCodeError("D3060", n);
    return Math.sqrt(num(n));
  }),
  define("power", "<n-n:n>", ([base, exponent]) => {
    if (base === undefined) return undefined;
    const result = Math.pow(num(base), num(exponent));
    if (!Number.isFinite(result)) throw new JsonataCodeError("D3061", base);
    return result;
  }),
  define("formatBase", "<n-n?:s>", ([value, radixIn]) => {
    if (value === undefined) return undefined;
    const rounded = round(num(value), undefined) as number;
    const radix = radixIn === undefined ? 10 : (round(num(radixIn), undefined) as number);
    if (radix < 2 || radix > 36) throw new JsonataCodeError("D3100", radix);
    return rounded.toString(radix);
  }),
  define("boolean", "<x-:b>", ([value]) => toBoolean(value)),
  define("not", "<x-:b>", ([value]) => (value === undefined ? undefined : !toBoolean(value))),
  define("exists", "<x:b>", ([value]) => value !== undefined),
  define("keys", "<x-:a<s>>", ([value]) => keys(value)),
  define("lookup", "<x-s:x>", ([value, key], run) => lookup(value, str(key), run)),
  define("append", "<xx:a>", ([first, second], run) => append(first, second, run)),
  define("spread", "<x-:a<o>>", ([value], run) => spread(value, run)),
  define("merge", "<a<o>:o>", ([objects]) => {
    if (objects === undefined) return undefined;
    const result = Object.create(null) as Record<string, unknown>;
    for (const obj of objects as unknown[]) {
      for (const prop of objectKeys(obj)) result[prop] = (obj as Record<string, unknown>)[prop];
    }
    return result;
  }),
  define("reverse", "<a:a>", ([arr]) => {
    if (arr === undefined) return undefined;
    const items = arr as unknown[];
    if (items.length <= 1) return items;
    const result = new Array<unknown>(items.length);
    for (let i = 0; i < items.length; i++) result[items.length - i - 1] = items[i];
    return result;
  }),
  define("distinct", "<x:x>", ([arr], run) => distinct(arr, run)),
  define("type", "<x:s>", ([value]) => typeOf(value)),
  define("error", "<s?:x>", ([message]) => {
    throw new JsonataCodeError("D3137", message);
  }),
  define("base64encode", "<s-:s>", ([s]) =>
    s === undefined ? undefined : Buffer.from(str(s), "binary").toString("base64"),
  ),
  define("base64decode", "<s-:s>", ([s]) =>
    s === undefined ? undefined : Buffer.from(str(s), "base64").toString("binary"),
  ),
  define("encodeUrlComponent", "<s-:s>", ([s]) => urlCodec(encodeURIComponent)(str(s))),
  define("encodeUrl", "<s-:s>", ([s]) => urlCodec(encodeURI)(str(s))),
  define("decodeUrlComponent", "<s-:s>", ([s]) => urlCodec(decodeURIComponent)(str(s))),
  define("decodeUrl", "<s-:s>", ([s]) => urlCodec(decodeURI)(str(s))),
  define("map", "<af>", ([arr, func], run) => map(arr as unknown[], func as Callable, run), {
    lambdaArguments: [1],
  }),
  define("filter", "<af>", ([arr, func], run) => filter(arr as unknown[], func as Callable, run), {
    lambdaArguments: [1],
  }),
  // Only without arguments: a picture string runs on the engine.
  define("now", "<s?s?:s>", (_args, run) => new Date(evaluationTime(run)).toISOString(), {
    maxCompiledArguments: 0,
  }),
  define("millis", "<:n>", (_args, run) => evaluationTime(run), { maxCompiledArguments: 0 }),
]);
