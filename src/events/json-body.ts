/**
 * Parsing of untrusted JSON text (request bodies, PutEvents `Detail` strings) with a depth
 * limit. The depth is checked by a linear scan of the text before `JSON.parse`, so a
 * 100,000-deep `[[[[...` is rejected in one pass without building anything and without
 * recursion (nothing downstream, `JSON.stringify` included, has to survive a deep value).
 */
import { RelaybusError } from "../errors.js";
import type { JsonValue } from "../types.js";

/** The limits that parsing enforces (a subset of `RelaybusConfig["limits"]`). */
export interface JsonBodyLimits {
  /** Deepest nesting accepted: `[]` and `{}` count 1, a scalar 0. Default 64. */
  maxJsonDepth: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Matches V8's " in JSON at position N" suffix; compiled once, used on the error path only. */
const V8_POSITION = / in JSON at position (\d+)/;
/** Matches V8's `, "<echoed input>" is not valid JSON` suffix, which can echo producer data. */
const V8_ECHO = /, ".*" is not valid JSON$/s;

/**
 * Parses JSON text into a value.
 *
 * @param body UTF-8 bytes (a request body) or a string (a PutEvents `Detail`).
 * @throws RelaybusError `JsonTooDeep` when nesting exceeds `limits.maxJsonDepth`;
 *   `InvalidJson` when the text is empty or not JSON, with the position when known.
 */
export function parseJsonBody(body: Buffer | string, limits: JsonBodyLimits): JsonValue {
  // A document cannot nest deeper than it has characters, so short ones skip the scan.
  if (body.length > limits.maxJsonDepth) {
    const depth = typeof body === "string" ? stringDepth(body, limits.maxJsonDepth) : bufferDepth(body, limits.maxJsonDepth);
    if (depth > limits.maxJsonDepth) {
      throw new RelaybusError(
        "JsonTooDeep",
        `JSON nests deeper than the limit of ${limits.maxJsonDepth} levels`,
        { details: { maxJsonDepth: limits.maxJsonDepth } },
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
 * Deepest nesting of `[`/`{` in `bytes`, skipping string contents. Stops early once past
 * `stopAbove`. Works on bytes because every structural character and `"`/`\` is ASCII and
 * no byte of a multi-byte UTF-8 sequence is below 0x80; `indexOf` jumps over strings natively.
 */
function bufferDepth(bytes: Buffer, stopAbove: number): number {
  let depth = 0;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      i = closingQuoteInBuffer(bytes, i);
      if (i < 0) return depth; // unterminated string: JSON.parse reports it
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > stopAbove) return depth;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return depth;
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

/** {@link bufferDepth} for a string. */
function stringDepth(text: string, stopAbove: number): number {
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuoteInString(text, i);
      if (i < 0) return depth;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > stopAbove) return depth;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return depth;
}

/** {@link closingQuoteInBuffer} for a string. */
function closingQuoteInString(text: string, open: number): number {
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
