/**
 * Header values that carry credentials are never shown by the API: rule definitions and
 * dead letters show them as "***". The stored values are unchanged and still sent.
 */

const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie)$|token|secret|api[-_]?key|password|signature/i;

/** A copy of `headers` with credential-like values replaced by "***". */
export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = SECRET_HEADER.test(name) ? "***" : value;
  return out;
}

/**
 * A copy of `value` where every `headers` object (a map of strings) found anywhere inside has
 * its credential-like values redacted. Used on rule and dead-letter responses.
 */
export function redactSecrets<T>(value: T): T {
  return walk(value) as T;
}

function walk(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(walk);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = key === "headers" && isStringMap(inner) ? redactHeaders(inner) : walk(inner);
  }
  return out;
}

function isStringMap(value: unknown): value is Record<string, string> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === "string");
}
