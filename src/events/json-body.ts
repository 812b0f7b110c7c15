/**
 * Parsing of untrusted JSON text (request bodies, PutEvents `Detail` strings) with a depth
 * limit and a limit on the keys of one object. Both are checked by one linear scan of the
 * text before `JSON.parse`, so a 100,000-deep `[[[[...` or an object of a million keys is
 * rejected in one pass without building anything and without recursion (nothing downstream,
 * `JSON.stringify` included, has to survive such a value).
 */
import { RelaybusError } from "../errors.js";
import type { JsonValue } from "../types.js";

/** The limits that parsing enforces (a subset of `RelaybusConfig["limits"]`). */
export interface JsonBodyLimits {
  /** Deepest nesting accepted: `[]` and `{}` count 1, a scalar 0. Default 64. */
  maxJsonDepth: number;
  /**
   * Most keys in one object (`limits.maxJsonKeysPerObject`, default 10,000). Absent: not
   * checked (callers that pass only a depth).
   */
  maxJsonKeysPerObject?: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COLON = 0x3a;

/** What the shape scan found: within the limits, or the first limit passed. */
const WITHIN = 0;
const TOO_DEEP = 1;
const TOO_MANY_KEYS = 2;
type ShapeVerdict = typeof WITHIN | typeof TOO_DEEP | typeof TOO_MANY_KEYS;

/**
 * Keys seen so far in each open container, by depth; reused by every scan (they are
 * synchronous), grown to the deepest limit asked for.
 */
let keysAtDepth = new Uint32Array(66);

/** Matches V8's " in JSON at position N" suffix; compiled once, used on the error path only. */
const V8_POSITION = / in JSON at position (\d+)/;
/** Matches V8's `, "<echoed input>" is not valid JSON` suffix, which can echo producer data. */
const V8_ECHO = /, ".*" is not valid JSON$/s;

/**
 * Parses JSON text into a value.
 *
 * @param body UTF-8 bytes (a request body) or a string (a PutEvents `Detail`).
 * @throws RelaybusError `JsonTooDeep` when nesting exceeds `limits.maxJsonDepth`;
 *   `JsonTooManyKeys` when an object has more than `limits.maxJsonKeysPerObject` keys;
 *   `InvalidJson` when the text is empty or not JSON, with the position when known.
 */
export function parseJsonBody(body: Buffer | string, limits: JsonBodyLimits): JsonValue {
  const maxDepth = limits.maxJsonDepth;
  const maxKeys = limits.maxJsonKeysPerObject ?? Number.POSITIVE_INFINITY;
  // A document cannot nest deeper than it has characters, nor hold an object of more keys
  // than a fifth of them (`{"":0,"":0}`), so short ones skip the scan.
  if (body.length > maxDepth || body.length > maxKeys * 5) {
    if (keysAtDepth.length < maxDepth + 2) keysAtDepth = new Uint32Array(maxDepth + 2);
    const verdict = typeof body === "string" ? stringShape(body, maxDepth, maxKeys) : bufferShape(body, maxDepth, maxKeys);
    if (verdict === TOO_DEEP) {
      throw new RelaybusError(
        "JsonTooDeep",
        `JSON nests deeper than the limit of ${maxDepth} levels (limits.maxJsonDepth)`,
        { details: { maxJsonDepth: maxDepth } },
      );
    }
    if (verdict === TOO_MANY_KEYS) {
      throw new RelaybusError(
        "JsonTooManyKeys",
        `a JSON object has more than the limit of ${maxKeys} keys (limits.maxJsonKeysPerObject)`,
        { details: { maxJsonKeysPerObject: maxKeys } },
      );
    }
  }
  const text = typeof body === "string" ? body : body.toString("utf8");
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    throw invalidJson(text, error);
  }
}

/**
 * Scans `bytes` for nesting past `maxDepth` and objects of more than `maxKeys` keys, skipping
 * string contents, and stops at the first. A key is the string before a `:` outside strings,
 * so counting those colons per open object counts its keys (malformed text may miscount;
 * `JSON.parse` refuses it anyway). Works on bytes because every structural character and
 * `"`/`\` is ASCII and no byte of a multi-byte UTF-8 sequence is below 0x80; `indexOf` jumps
 * over strings natively.
 */
function bufferShape(bytes: Buffer, maxDepth: number, maxKeys: number): ShapeVerdict {
  const keys = keysAtDepth;
  let depth = 0;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      i = closingQuoteInBuffer(bytes, i);
      if (i < 0) return WITHIN; // unterminated string: JSON.parse reports it
    } else if (c === COLON) {
      if (depth > 0 && ++keys[depth]! > maxKeys) return TOO_MANY_KEYS;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > maxDepth) return TOO_DEEP;
      keys[depth] = 0;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return WITHIN;
}

/** Index of the quote closing the string opened at `open`, or -1. */
function closingQuoteInBuffer(bytes: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = bytes.indexOf(QUOTE, at + 1);
    if (at < 0) return -1;
    // The quote is escaped when an odd number of backslashes precede it.
    let backslashes = 0;
    for (let j = at - 1; j > open && bytes[j] === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** {@link bufferShape} for a string. */
function stringShape(text: string, maxDepth: number, maxKeys: number): ShapeVerdict {
  const keys = keysAtDepth;
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuoteInString(text, i);
      if (i < 0) return WITHIN;
    } else if (c === COLON) {
      if (depth > 0 && ++keys[depth]! > maxKeys) return TOO_MANY_KEYS;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > maxDepth) return TOO_DEEP;
      keys[depth] = 0;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return WITHIN;
}

/**
 * {@link closingQuoteInBuffer} for a string: the index of the quote closing the string opened
 * at `open`, or -1. Also used by `stringify-form.ts`.
 */
export function closingQuoteInString(text: string, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at < 0) return -1;
    let backslashes = 0;
    for (let j = at - 1; j > open && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/**
 * Builds the `InvalidJson` error: V8's reason with the position (and line and column) when
 * V8 gives one, without V8's echo of the input, which may be long or hold producer data.
 */
function invalidJson(text: string, error: unknown): RelaybusError {
  if (text.trim() === "") {
    return new RelaybusError("InvalidJson", "invalid JSON: the body is empty");
  }
  const raw = error instanceof Error ? error.message : String(error);
  const match = V8_POSITION.exec(raw);
  const reason = raw.replace(V8_POSITION, "").replace(V8_ECHO, "");
  if (!match?.[1]) {
    return new RelaybusError("InvalidJson", `invalid JSON: ${reason}`, { cause: error });
  }
  const position = Number(match[1]);
  const { line, column } = lineAndColumn(text, position);
  return new RelaybusError(
    "InvalidJson",
    `invalid JSON at position ${position} (line ${line}, column ${column}): ${reason}`,
    { details: { position, line, column }, cause: error },
  );
}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf("\n"); at >= 0 && at < position; at = text.indexOf("\n", at + 1)) {
    line++;
    lineStart = at + 1;
  }
  return { line, column: position - lineStart + 1 };
}
