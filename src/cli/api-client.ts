/**
 * How the client commands (`relaybus dlq`, `replay`, `trace`, ...) talk to a running
 * Relaybus: one JSON request, with an error answer turned into an Error that says its code
 * and message, and an unreachable server into one that says where it looked.
 */
import { clientApiKey, clientUrl } from "../config/load-config.js";

/**
 * Sends `method path` (with `body` as JSON when given) to the server at `url` (or
 * `RELAYBUS_URL`, or `http://127.0.0.1:8080`) and resolves with the parsed answer, undefined
 * when it is empty. The API key of `apiKey`, else `RELAYBUS_API_KEY`, goes as
 * `Authorization: Bearer` when there is one.
 */
export async function callApi(
  url: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  apiKey?: string,
): Promise<unknown> {
  const base = clientUrl(url);
  const headers: Record<string, string> = authorizationHeader(apiKey);
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch((error: unknown) => {
    throw new Error(`cannot reach Relaybus at ${base}: ${String((error as Error).cause ?? error)}`);
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new Error(
      error === undefined
        ? `${method} ${path}: HTTP ${response.status} ${text}`
        : `${error.code}: ${error.message}`,
    );
  }
  return parsed;
}

/** `{authorization: "Bearer rb_..."}` for the key of `flag` or `RELAYBUS_API_KEY`; empty without one. */
export function authorizationHeader(flag?: string): Record<string, string> {
  const key = clientApiKey(flag);
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}
