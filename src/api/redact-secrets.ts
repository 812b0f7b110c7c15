/**
 * Header values that carry credentials are never shown by the API: rule definitions and
 * dead letters show them as "***". The stored values are unchanged and still sent. Likewise
 * the literal secrets of a target's `signing.secrets` show as their prefix and "***"
 * (`whsec_***`); `env:NAME` references are shown, since they hold no secret. A connection's
 * secrets (its API key, password or client secret, and every header and query value) show
 * as "***" unless they are `env:NAME` references.
 */
import { CONNECTION_ENV_PREFIX, connectionSecretValues, type ConnectionDefinition } from "../log/connection-store.js";

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
    if (key === "headers" && isStringMap(inner)) out[key] = redactHeaders(inner);
    else if (key === "signing" && isSigning(inner)) out[key] = { ...inner, secrets: inner.secrets.map(redactSigningSecret) };
    else out[key] = walk(inner);
  }
  return out;
}

/** `env:NAME` as is; anything else as its `wh..._` prefix (if any) and "***". */
function redactSigningSecret(secret: string): string {
  if (secret.startsWith("env:")) return secret;
  return `${/^wh[a-z]{2,3}_/.exec(secret)?.[0] ?? ""}***`;
}

function isSigning(value: unknown): value is { secrets: string[] } {
  const secrets = (value as { secrets?: unknown } | null)?.secrets;
  return typeof value === "object" && Array.isArray(secrets) && secrets.every((s) => typeof s === "string");
}

function isStringMap(value: unknown): value is Record<string, string> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === "string");
}

/** Keys of a connector's config whose values are credentials. */
const SECRET_CONFIG_KEY = /pass(word)?$|secret|token|api[-_]?key|credentials?$/i;

/**
 * A copy of a stream definition with its connectors' credentials shown as "***": values of
 * credential-like keys (`password`, `pass`, `authToken`, `clientSecret`...), credential
 * headers, and the password of any URL that carries one (`postgres://user:***@host/db`).
 */
export function redactConnectorConfigs<T>(definition: T): T {
  return walkConfig(redactSecrets(definition)) as T;
}

function walkConfig(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(walkConfig);
  if (typeof value === "string") return redactUrlPassword(value);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = typeof inner === "string" && SECRET_CONFIG_KEY.test(key) ? "***" : walkConfig(inner);
  }
  return out;
}

function redactUrlPassword(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(text)) return text;
  try {
    const url = new URL(text);
    if (url.password === "") return text;
    url.password = "***";
    return url.toString();
  } catch {
    return text;
  }
}

/** A copy of `connection` whose literal secrets are "***" (`env:NAME` references shown as they are). */
export function redactConnection(connection: ConnectionDefinition): ConnectionDefinition {
  const copy = structuredClone(connection);
  for (const { path, value } of connectionSecretValues(connection)) {
    if (value.startsWith(CONNECTION_ENV_PREFIX)) continue;
    let parent = copy as unknown as Record<string, unknown>;
    for (const segment of path.slice(0, -1)) parent = parent[segment] as Record<string, unknown>;
    parent[String(path[path.length - 1])] = "***";
  }
  return copy;
}
