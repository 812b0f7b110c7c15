/**
 * Whether JSON text is already in the form `JSON.stringify` writes: then
 * `JSON.stringify(JSON.parse(text)) === text`, and a caller that holds the text may store it
 * as it is instead of serializing the parsed value again. PutEvents `Detail` strings usually
 * are (AWS SDKs and most producers send `JSON.stringify` output), and serializing `data` was
 * the largest part of serializing a stored event.
 *
 * One linear scan of the text. It answers false whenever it cannot tell cheaply, so a false
 * answer only costs the caller the serialization it would have done anyway; a true answer
 * must be exact, since sizes and billable units are measured on the stored text. What makes
 * `JSON.stringify(JSON.parse(text))` differ from `text`, and how each is caught:
 * - whitespace between tokens (false on any);
 * - escapes `JSON.stringify` writes otherwise: `\/`, or `\u` for a character it writes as
 *   itself (false on `\/` and on every `\u`, including the few it does write that way);
 * - lone surrogates, which it escapes (false unless the text is well-formed UTF-16);
 * - numbers not in their shortest form: `1.0`, `1e2`, `-0`, `0.10`, digits past double
 *   precision (false unless `String(Number(token))` gives the token back);
 * - duplicate keys, of which the parse keeps one (false on any);
 * - keys that are array indices, which V8 orders first, ascending (false on any key that
 *   starts with a digit).
 */

import { closingQuoteInString } from "./json-body.js";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const MINUS = 0x2d;
const DIGIT_0 = 0x30;
const DIGIT_1 = 0x31;
const DIGIT_9 = 0x39;

/**
 * Keys of one object compared with each other, at most. Each new key is compared with the
 * ones before it, so an object of more keys answers false rather than cost a quadratic scan.
 */
const MAX_KEYS_COMPARED = 64;
/** Keys of all the objects open at one point of the scan, at most (else the answer is false). */
const MAX_OPEN_KEYS = 1_024;
/** Deepest nesting scanned, else the answer is false (PutEvents `Detail`: 64 by default). */
const MAX_DEPTH = 64;

/** Integers of up to this many digits are exact doubles written back as they are. */
const MAX_EXACT_INTEGER_DIGITS = 15;

/**
 * The keys of the objects open at the scan's position, as [start, end) offsets of their text
 * (without quotes), innermost object last; `keysFrom[depth]` is where the keys of the
 * container at `depth` start. Reused by every scan: they are synchronous.
 */
const keyStarts = new Int32Array(MAX_OPEN_KEYS);
const keyEnds = new Int32Array(MAX_OPEN_KEYS);
const keysFrom = new Int32Array(MAX_DEPTH + 1);

/** `String.prototype.isWellFormed` (ES2024, in Node 20; the project's TypeScript lib is ES2023). */
const isWellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * True when `text` is exactly what `JSON.stringify` writes for `JSON.parse(text)`.
 * `text` must be JSON that `JSON.parse` accepts; for other text the answer means nothing.
 */
export function isStringifyForm(text: string): boolean {
  // Both checks look at the whole text at once, natively: in valid JSON every backslash
  // is in a string. (Checking escapes string by string made the scan twice as slow.)
  if (!isWellFormed(text) || !onlyStringifyEscapes(text)) return false;
  const length = text.length;
  let depth = 0;
  let keyCount = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const close = closingQuoteInString(text, i);
      if (close < 0) return false;
      if (text.charCodeAt(close + 1) === COLON) {
        const first = text.charCodeAt(i + 1);
        if (first >= DIGIT_0 && first <= DIGIT_9) return false;
        const from = keysFrom[depth]!;
        if (keyCount - from >= MAX_KEYS_COMPARED || keyCount === MAX_OPEN_KEYS) return false;
        if (keyCount > from && isRepeatedKey(text, i + 1, close, from, keyCount)) return false;
        keyStarts[keyCount] = i + 1;
        keyEnds[keyCount] = close;
        keyCount++;
      }
      i = close;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > MAX_DEPTH) return false;
      keysFrom[depth] = keyCount;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      keyCount = keysFrom[depth]!;
      depth--;
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      const end = numberEnd(text, i + 1);
      if (!isShortestNumber(text, i, end)) return false;
      i = end - 1;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      return false;
    }
    // Anything else is `,`, `:` or a letter of true, false or null: written as they are.
  }
  return true;
}

/** True when every escape in `text` is one that `JSON.stringify` writes as two characters. */
function onlyStringifyEscapes(text: string): boolean {
  for (let at = text.indexOf("\\"); at !== -1; at = text.indexOf("\\", at + 2)) {
    switch (text.charCodeAt(at + 1)) {
      case QUOTE:
      case BACKSLASH:
      case 0x62: // b
      case 0x66: // f
      case 0x6e: // n
      case 0x72: // r
      case 0x74: // t
        break;
      default:
        return false; // `\/` or `\u`
    }
  }
  return true;
}

/** True when the key text [start, end) equals one of the keys at [from, count) of the key stack. */
function isRepeatedKey(
  text: string,
  start: number,
  end: number,
  from: number,
  count: number,
): boolean {
  const length = end - start;
  for (let k = from; k < count; k++) {
    const otherStart = keyStarts[k]!;
    if (keyEnds[k]! - otherStart !== length) continue;
    let j = 0;
    while (j < length && text.charCodeAt(start + j) === text.charCodeAt(otherStart + j)) j++;
    if (j === length) return true;
  }
  return false;
}

/** End (exclusive) of the number token that continues at `from`. */
function numberEnd(text: string, from: number): number {
  let at = from;
  while (isNumberCharacter(text.charCodeAt(at))) at++;
  return at;
}

/** Digits, `.`, `e`, `E`, `+` and `-`: what a JSON number is written with. */
function isNumberCharacter(c: number): boolean {
  return (
    (c >= DIGIT_0 && c <= DIGIT_9) ||
    c === 0x2e ||
    c === 0x65 ||
    c === 0x45 ||
    c === 0x2b ||
    c === MINUS
  );
}

/** True when the number token [start, end) is what `JSON.stringify` writes for its value. */
function isShortestNumber(text: string, start: number, end: number): boolean {
  let at = start;
  if (text.charCodeAt(at) === MINUS) at++;
  const first = text.charCodeAt(at);
  // The common case without allocating: a plain integer that a double holds exactly.
  if (first >= DIGIT_1 && first <= DIGIT_9 && end - at <= MAX_EXACT_INTEGER_DIGITS) {
    let j = at + 1;
    while (j < end && text.charCodeAt(j) >= DIGIT_0 && text.charCodeAt(j) <= DIGIT_9) j++;
    if (j === end) return true;
  }
  // Fractions, exponents, `0`, `-0`, long integers: compare with the number's own form
  // (`JSON.stringify` writes finite numbers as `String` does, and non-finite ones as null).
  const token = text.slice(start, end);
  return String(Number(token)) === token;
}
