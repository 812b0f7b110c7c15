/**
 * What a target's connection adds to each attempt: the authorization header (an API key,
 * HTTP basic, or an OAuth 2 bearer token), the connection's headers and its query
 * parameters. The delivery engine asks on every attempt, so a target without a connection
 * costs a Map lookup, and everything that can be worked out once per connection definition
 * (`env:` values read, the basic header encoded, the parts frozen) is, and kept per
 * definition object until the definition changes.
 *
 * Delivery does not import the rules: the registry answers {@link ConnectionLookup}
 * (`connectionOf`, `findConnection`) and the service hands it in.
 *
 * @module
 */
import type { LookupFunction } from "node:net";
import type { OutboundConfig } from "../config/defaults.js";
import { processEnvironment, type EnvironmentLookup } from "../config/environment.js";
import {
  resolveConnection,
  type ConnectionDefinition,
  type OAuth2Authorization,
} from "../log/connection-store.js";
import type { Clock, Logger } from "../types.js";
import { createOAuth2TokenCache } from "./oauth2-token-cache.js";
import { createOAuth2TokenClient } from "./oauth2-token-client.js";

/** What a connection adds to one attempt. Query values are raw: the caller encodes them into the URL. */
export interface AuthorizedParts {
  headers: Record<string, string>;
  query: Record<string, string>;
}

/** The target an attempt is for. */
export interface AuthorizedTarget {
  bus: string;
  rule: string;
  targetId: string;
}

export interface RequestAuthorizer {
  /**
   * What the target's connection adds to this attempt; undefined when the target has no
   * connection (a synchronous Map lookup then). Throws, or rejects, with an Error whose
   * message says why when authorization cannot be had (the connection is gone, an `env:`
   * variable is unset, the token endpoint is down or refusing): the attempt then counts as a
   * retryable failure with that message. Returns a Promise only when a token must be fetched.
   * The returned objects are frozen and shared: copy before changing.
   */
  authorize(
    target: AuthorizedTarget,
    nowMs: number,
  ): AuthorizedParts | undefined | Promise<AuthorizedParts | undefined>;
  /** The target answered 401: forget its cached OAuth token so the next attempt fetches a new one. */
  unauthorized(target: AuthorizedTarget): void;
  /** Aborts token requests in flight and closes their connections. */
  close(): Promise<void>;
}

/** How the authorizer finds a target's connection (the rule registry implements it). */
export interface ConnectionLookup {
  /** The connection the target names, or undefined. Must be cheap: asked on every attempt. */
  connectionOf(bus: string, rule: string, targetId: string): string | undefined;
  /**
   * The connection of that name, from a rule file or the API; the same object until the
   * connection changes.
   */
  findConnection(name: string): ConnectionDefinition | undefined;
}

/** Options of {@link createRequestAuthorizer}. */
export interface RequestAuthorizerOptions {
  connections: ConnectionLookup;
  logger: Logger;
  /** Which addresses token endpoints may be on (`delivery.outbound`, as deliveries). Default public only. */
  outbound?: OutboundConfig;
  /** Where `env:NAME` values are read. Default the process's environment. */
  env?: EnvironmentLookup;
  /** When token fetches end, for their backoff. Default the wall clock. */
  clock?: Clock;
  /** Deadline of one token request. Default 10,000 ms. */
  tokenTimeoutMs?: number;
  /** Most bytes of a token answer read. Default 65,536. */
  maxTokenResponseBytes?: number;
  /** Resolves token endpoints' host names; default `dns.lookup`. */
  lookup?: LookupFunction;
}

/** A connection worked out once: its parts, or for OAuth 2 what a token is fetched with. */
interface PreparedConnection {
  /** API key and basic: every attempt's parts. */
  parts?: AuthorizedParts;
  oauth2?: {
    credentials: OAuth2Authorization;
    headers: Record<string, string>;
    query: Record<string, string>;
    /** The parts made for the last token seen, so a cached token costs no allocation. */
    last?: { token: string; parts: AuthorizedParts };
  };
}

/** Creates the authorizer; `close()` it with the service. */
export function createRequestAuthorizer(options: RequestAuthorizerOptions): RequestAuthorizer {
  const { connections, logger } = options;
  const env = options.env ?? processEnvironment;
  const client = createOAuth2TokenClient({
    ...(options.outbound === undefined ? {} : { outbound: options.outbound }),
    ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    ...(options.tokenTimeoutMs === undefined ? {} : { timeoutMs: options.tokenTimeoutMs }),
    ...(options.maxTokenResponseBytes === undefined
      ? {}
      : { maxResponseBytes: options.maxTokenResponseBytes }),
  });
  const tokens = createOAuth2TokenCache({
    fetchToken: (oauth2) => client.fetchToken(oauth2),
    logger,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const prepared = new WeakMap<ConnectionDefinition, PreparedConnection>();

  function prepare(definition: ConnectionDefinition): PreparedConnection {
    let found = prepared.get(definition);
    if (found === undefined) {
      // Throws naming an unset variable; not cached, so setting it needs no restart.
      found = prepareConnection(resolveConnection(definition, env));
      prepared.set(definition, found);
    }
    return found;
  }

  function withToken(
    oauth2: NonNullable<PreparedConnection["oauth2"]>,
    token: string,
  ): AuthorizedParts {
    if (oauth2.last?.token === token) return oauth2.last.parts;
    const parts = freezeParts(
      { ...oauth2.headers, authorization: `Bearer ${token}` },
      oauth2.query,
    );
    oauth2.last = { token, parts };
    return parts;
  }

  return {
    authorize(target, nowMs) {
      const name = connections.connectionOf(target.bus, target.rule, target.targetId);
      if (name === undefined) return undefined;
      const definition = connections.findConnection(name);
      if (definition === undefined) {
        tokens.remove(name);
        throw new Error(
          `connection ${JSON.stringify(name)} does not exist (named by target ${JSON.stringify(target.targetId)} of rule ${JSON.stringify(target.rule)})`,
        );
      }
      const connection = prepare(definition);
      if (connection.parts !== undefined) return connection.parts;
      const oauth2 = connection.oauth2!;
      let token: string | Promise<string>;
      try {
        token = tokens.token(name, definition, oauth2.credentials, nowMs);
      } catch (error) {
        throw connectionError(name, error);
      }
      if (typeof token === "string") return withToken(oauth2, token);
      return token.then(
        (value) => withToken(oauth2, value),
        (error: unknown) => {
          throw connectionError(name, error);
        },
      );
    },

    unauthorized(target) {
      const name = connections.connectionOf(target.bus, target.rule, target.targetId);
      if (name !== undefined) tokens.forget(name);
    },

    close: () => client.close(),
  };
}

/** The parts of a connection whose `env:` values are read. Header names go lower-case, as the engine's own. */
function prepareConnection(connection: ConnectionDefinition): PreparedConnection {
  const headers = Object.fromEntries(
    Object.entries(connection.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
  );
  const query = { ...connection.query };
  const auth = connection.authorization;
  if ("apiKey" in auth) {
    return {
      parts: freezeParts(
        { ...headers, [auth.apiKey.header.toLowerCase()]: auth.apiKey.value },
        query,
      ),
    };
  }
  if ("basic" in auth) {
    const encoded = Buffer.from(`${auth.basic.username}:${auth.basic.password}`, "utf8").toString(
      "base64",
    );
    return { parts: freezeParts({ ...headers, authorization: `Basic ${encoded}` }, query) };
  }
  return { oauth2: { credentials: auth.oauth2, headers, query } };
}

function freezeParts(
  headers: Record<string, string>,
  query: Record<string, string>,
): AuthorizedParts {
  return Object.freeze({ headers: Object.freeze(headers), query: Object.freeze(query) });
}

/** `connection "x": <why>`, once. */
function connectionError(name: string, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const prefix = `connection ${JSON.stringify(name)}`;
  return new Error(message.startsWith(prefix) ? message : `${prefix}: ${message}`, {
    cause: error,
  });
}
