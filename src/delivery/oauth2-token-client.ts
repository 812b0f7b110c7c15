/**
 * Asks an OAuth 2 token endpoint for an access token with the client credentials grant
 * (RFC 6749 section 4.4): one POST of `application/x-www-form-urlencoded`
 * `grant_type=client_credentials` (with `scope`, `audience` and any extra parameters), the
 * client authenticated by an `Authorization: Basic` header or by `client_id` and
 * `client_secret` in the form (section 2.3.1).
 *
 * A token URL is written by whoever can create a connection, like a target URL, so the
 * request goes through the same outbound guard as deliveries (`outbound-guard.ts`): a token
 * endpoint on a loopback or private address is refused unless `delivery.outbound` allows it.
 * Redirects are not followed; the answer is read within a deadline and up to a size cap.
 * Failures are Errors whose message says what went wrong without quoting a secret.
 *
 * @module
 */
import type { LookupFunction } from "node:net";
import { Agent, errors, request } from "undici";
import { DEFAULT_CONFIG, type OutboundConfig } from "../config/defaults.js";
import type { OAuth2Authorization } from "../log/connection-store.js";
import {
  BlockedAddressError,
  compileOutboundPolicy,
  createGuardedConnector,
} from "./outbound-guard.js";

/** Default of {@link OAuth2TokenClientOptions.timeoutMs}: 10 s for the whole exchange. */
export const DEFAULT_TOKEN_TIMEOUT_MS = 10_000;
/** Default of {@link OAuth2TokenClientOptions.maxResponseBytes}: 64 KiB, far above any token answer. */
export const DEFAULT_MAX_TOKEN_RESPONSE_BYTES = 65_536;

/** An access token as the endpoint gave it. */
export interface OAuth2Token {
  accessToken: string;
  /** `expires_in`, when the endpoint said (a positive number of seconds). */
  expiresInSeconds?: number;
}

/** Options of {@link createOAuth2TokenClient}. */
export interface OAuth2TokenClientOptions {
  /** Which addresses a token endpoint may be on (`delivery.outbound`). Default: public ones only. */
  outbound?: OutboundConfig;
  /** Resolves host names; default `dns.lookup`. Its answers are judged like any. */
  lookup?: LookupFunction;
  /** Deadline of one token request, headers and body together. Default 10,000 ms. */
  timeoutMs?: number;
  /** Most bytes of an answer read; past it the request fails. Default 65,536. */
  maxResponseBytes?: number;
}

/** Fetches tokens; `close()` aborts requests in flight and closes the connections. */
export interface OAuth2TokenClient {
  /** Resolves with the token, or rejects with an Error saying why there is none. */
  fetchToken(oauth2: OAuth2Authorization): Promise<OAuth2Token>;
  close(): Promise<void>;
}

/** Creates a client with its own connection pool to token endpoints. */
export function createOAuth2TokenClient(options: OAuth2TokenClientOptions = {}): OAuth2TokenClient {
  const outbound = options.outbound ?? DEFAULT_CONFIG.delivery.outbound;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_TOKEN_RESPONSE_BYTES;
  // Token requests are rare (once per token lifetime per connection): a few connections
  // per endpoint are plenty.
  const agent = new Agent({
    connections: 4,
    pipelining: 1,
    connect: createGuardedConnector(
      compileOutboundPolicy(outbound),
      options.lookup === undefined ? {} : { lookup: options.lookup },
    ),
  });
  const closing = new AbortController();

  async function fetchToken(oauth2: OAuth2Authorization): Promise<OAuth2Token> {
    const where = describeUrl(oauth2.tokenUrl);
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (oauth2.scope !== undefined) form.set("scope", oauth2.scope);
    if (oauth2.audience !== undefined) form.set("audience", oauth2.audience);
    for (const [name, value] of Object.entries(oauth2.extraParams ?? {})) form.set(name, value);
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    if ((oauth2.method ?? "basic") === "basic") {
      headers.authorization = `Basic ${Buffer.from(`${formEncode(oauth2.clientId)}:${formEncode(oauth2.clientSecret)}`).toString("base64")}`;
    } else {
      form.set("client_id", oauth2.clientId);
      form.set("client_secret", oauth2.clientSecret);
    }

    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const signal = AbortSignal.any([deadline.signal, closing.signal]);
    let status: number;
    let fields: Record<string, unknown>;
    try {
      const response = await request(oauth2.tokenUrl, {
        dispatcher: agent,
        method: "POST",
        headers,
        body: form.toString(),
        signal,
      });
      status = response.statusCode;
      fields = parseAnswer(
        await readCapped(response.body, maxResponseBytes),
        response.headers["content-type"],
      );
    } catch (error) {
      if (deadline.signal.aborted)
        throw new Error(`token endpoint ${where} gave no complete answer within ${timeoutMs} ms`);
      if (closing.signal.aborted)
        throw new Error(`token request to ${where} aborted: shutting down`);
      throw new Error(`token request to ${where} failed: ${describeError(error)}`);
    } finally {
      clearTimeout(timer);
    }
    if (status < 200 || status > 299) {
      throw new Error(
        `token endpoint ${where} answered HTTP ${status}${describeOAuthError(fields)}`,
      );
    }
    return tokenFrom(fields, where);
  }

  async function close(): Promise<void> {
    closing.abort();
    await agent.close().catch(() => agent.destroy());
  }

  return { fetchToken, close };
}

/** `application/x-www-form-urlencoded` encoding of one value, as RFC 6749 2.3.1 asks before base64. */
function formEncode(value: string): string {
  return new URLSearchParams([["", value]]).toString().slice(1);
}

/** The URL without its query (which might hold a secret), for messages. */
function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

/** The body as text, failing past `maxBytes` (and closing the connection then). */
async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(): void },
  maxBytes: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy();
      throw new Error(`the answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * The answer's fields: JSON as RFC 6749 section 5.1 says, or a form (some endpoints answer
 * `application/x-www-form-urlencoded`). Empty when it is neither.
 */
function parseAnswer(
  text: string,
  contentType: string | string[] | undefined,
): Record<string, unknown> {
  const type = (Array.isArray(contentType) ? contentType[0] : contentType) ?? "";
  if (/^application\/x-www-form-urlencoded\b/i.test(type))
    return Object.fromEntries(new URLSearchParams(text));
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** `: invalid_client (description)` from an error answer (section 5.2), or nothing. */
function describeOAuthError(fields: Record<string, unknown>): string {
  if (typeof fields.error !== "string") return "";
  const code = fields.error.slice(0, 64);
  const description =
    typeof fields.error_description === "string"
      ? ` (${fields.error_description.slice(0, 200)})`
      : "";
  return `: ${code}${description}`;
}

function tokenFrom(fields: Record<string, unknown>, where: string): OAuth2Token {
  const accessToken = fields.access_token;
  if (typeof accessToken !== "string" || accessToken === "") {
    throw new Error(`token endpoint ${where} answered without an access_token`);
  }
  const tokenType = fields.token_type;
  // Bearer is the only type a header can carry without more machinery; absent means Bearer
  // in practice, whatever section 5.1 requires.
  if (
    tokenType !== undefined &&
    (typeof tokenType !== "string" || tokenType.toLowerCase() !== "bearer")
  ) {
    throw new Error(
      `token endpoint ${where} gave a token of type ${JSON.stringify(tokenType)}; only Bearer tokens are supported`,
    );
  }
  const expiresIn = Number(fields.expires_in);
  return {
    accessToken,
    ...(fields.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0
      ? { expiresInSeconds: expiresIn }
      : {}),
  };
}

/** What went wrong, for messages: the guard's refusal, a system error's code, or the message. */
function describeError(error: unknown): string {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (error instanceof BlockedAddressError) return error.message;
  if (cause instanceof BlockedAddressError) return cause.message;
  if (error instanceof errors.UndiciError && error.message !== "") return error.message;
  if (!(error instanceof Error)) return String(error);
  const code =
    (error as { code?: unknown }).code ?? (cause as { code?: unknown } | undefined)?.code;
  const text = error.message === "" && cause instanceof Error ? cause.message : error.message;
  return typeof code === "string" && !text.includes(code) ? `${code}: ${text}` : text;
}
