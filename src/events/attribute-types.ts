/**
 * The CloudEvents 1.0 type system (spec.md "Type System"), as predicates over canonical
 * string values, plus media types (RFC 2046 / RFC 9110 syntax). Every pattern is compiled
 * once, at module load: these run for every attribute of every event on the hot path.
 */

/**
 * Characters a CloudEvents `String` must not hold: controls U+0000-001F and U+007F-009F,
 * surrogates not used in a pair, and Unicode noncharacters. In `u` mode a proper surrogate
 * pair is one code point, so `\p{Cs}` only matches lone halves.
 */
const DISALLOWED_STRING_CHARS = /[\p{Cc}\p{Cs}\p{Noncharacter_Code_Point}]/u;

/** Attribute names: lower-case ASCII letters and digits, at most 20 (the spec's SHOULD, as the SDKs enforce). */
const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;

/** RFC 3339 `date-time`; the `T` and `Z` are case-insensitive in its ABNF. Ranges are checked after. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** Characters RFC 3986 allows in a URI reference (unreserved, reserved, and `%` of pct-encoded). */
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;
/** A `%` not followed by two hex digits. */
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;
/** RFC 3986 `scheme`. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** RFC 4648 base64 alphabet with at most two padding characters; length is checked apart. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** RFC 9110 `token`. */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** RFC 9110 `media-type`: type "/" subtype, then `; name=value` parameters (token or quoted-string). */
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\]|\\\\.)*"))*[ \\t]*$`,
);

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

/** True when `name` is a valid attribute name: `[a-z0-9]`, 1 to 20 characters. */
export function isAttributeName(name: string): boolean {
  return ATTRIBUTE_NAME.test(name);
}

/** True when `value` is a CloudEvents `String`: no controls, lone surrogates or noncharacters. */
export function isCloudEventsString(value: string): boolean {
  return !DISALLOWED_STRING_CHARS.test(value);
}

/** True when `value` is a CloudEvents `Integer`: a whole number in the signed 32-bit range. */
export function isCloudEventsInteger(value: number): boolean {
  return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

/**
 * True when `value` is an RFC 3339 timestamp with valid calendar fields (leap years, and a
 * leap second `:60` as RFC 3339 allows).
 */
export function isRfc3339(value: string): boolean {
  const m = RFC3339.exec(value);
  if (m === null) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 60) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  return true;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * True when `value` is an RFC 3986 URI reference (absolute, or relative like `/orders` or
 * `1-555-123-4567`). Checks the character set, percent-encoding, at most one `#`, and that a
 * `:` before the first `/`, `?` or `#` ends a valid scheme (otherwise the reference would be
 * read as having a scheme it cannot have). Non-ASCII must be percent-encoded.
 */
export function isUriReference(value: string): boolean {
  if (!URI_CHARS.test(value) || BAD_PERCENT.test(value)) return false;
  const hash = value.indexOf("#");
  if (hash >= 0 && value.indexOf("#", hash + 1) >= 0) return false;
  const colon = value.indexOf(":");
  if (colon < 0 || colon > firstDelimiter(value)) return true;
  return SCHEME.test(value.slice(0, colon));
}

/**
 * True when `value` is an absolute URI: a URI reference with a scheme. A fragment is
 * accepted, as the CloudEvents JSON Schema (`format: uri`) accepts one for `dataschema`.
 */
export function isAbsoluteUri(value: string): boolean {
  const colon = value.indexOf(":");
  return colon > 0 && colon < firstDelimiter(value) && isUriReference(value);
}

/** Index of the first `/`, `?` or `#`, or the length. */
function firstDelimiter(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x2f || c === 0x3f || c === 0x23) return i;
  }
  return value.length;
}

/** True when `value` is padded RFC 4648 base64 (the empty string included). */
export function isBase64(value: string): boolean {
  return value.length % 4 === 0 && BASE64.test(value);
}

/** True when `value` is a media type such as `application/json; charset=utf-8`. */
export function isMediaType(value: string): boolean {
  return MEDIA_TYPE.test(value);
}

/**
 * The media type without parameters, lower-cased: `Application/JSON; charset=utf-8` →
 * `application/json`.
 */
export function mediaTypeEssence(value: string): string {
  const semicolon = value.indexOf(";");
  return (semicolon < 0 ? value : value.slice(0, semicolon)).trim().toLowerCase();
}

/**
 * True when the media type declares JSON content: subtype `json` or a `+json` suffix
 * (JSON format section 3.1.1: `* /json` or `* /*+json`).
 */
export function isJsonMediaType(value: string): boolean {
  const essence = mediaTypeEssence(value);
  return essence.endsWith("/json") || essence.endsWith("+json");
}

/**
 * A value for an error message: JSON-quoted and cut to 60 characters, so a message names what
 * was sent without echoing a large payload.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}
