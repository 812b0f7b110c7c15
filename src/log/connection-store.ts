/**
 * Connections: what a target's requests carry besides the event, like the connections of
 * EventBridge's API destinations. A connection names one authorization (an API key header,
 * HTTP basic, or OAuth 2 client credentials), extra headers and query parameters. They are
 * global (not per bus): rule files declare them under `connections:`, the API creates them
 * (`PUT /v1/connections/{name}`), and a target names one with `connection: <name>`.
 *
 * This file holds the connection as written (shared by the rules, delivery and API layers,
 * which is why it lives this low), which of its values are secrets, how `env:NAME` values
 * are read, and the store of connections created through the API.
 */
import type { EnvironmentLookup } from "../config/environment.js";

/** An API key sent as a request header: `{header: "x-api-key", value: "env:KEY"}`. */
export interface ApiKeyAuthorization {
  /** The header's name (an HTTP token; not one of the headers Relaybus sets itself). */
  header: string;
  /** The key: a literal, or `env:NAME`. A secret. */
  value: string;
}

/** HTTP basic authentication (RFC 7617): `Authorization: Basic base64(username:password)`. */
export interface BasicAuthorization {
  username: string;
  /** A literal, or `env:NAME`. A secret. */
  password: string;
}

/** How an OAuth 2 client authenticates to the token endpoint (RFC 6749 section 2.3.1). */
export const OAUTH2_CLIENT_AUTH_METHODS = ["basic", "body"] as const;
export type OAuth2ClientAuthMethod = (typeof OAUTH2_CLIENT_AUTH_METHODS)[number];

/**
 * OAuth 2 client credentials (RFC 6749 section 4.4): Relaybus asks `tokenUrl` for an access
 * token and sends it as `Authorization: Bearer <token>`, caching it until shortly before it
 * expires.
 */
export interface OAuth2Authorization {
  /** The token endpoint, an http or https URL. It must pass `delivery.outbound` like any target. */
  tokenUrl: string;
  clientId: string;
  /** A literal, or `env:NAME`. A secret. */
  clientSecret: string;
  /** Sent as `scope` when given. */
  scope?: string;
  /** Sent as `audience` when given (Auth0 and others want it). */
  audience?: string;
  /** More form parameters of the token request, sent as given. */
  extraParams?: Record<string, string>;
  /**
   * `basic` (default): the client id and secret go in an `Authorization: Basic` header, as
   * RFC 6749 prefers; `body`: as `client_id` and `client_secret` form parameters.
   */
  method?: OAuth2ClientAuthMethod;
}

/** Exactly one way of authorizing. */
export type ConnectionAuthorization =
  { apiKey: ApiKeyAuthorization } | { basic: BasicAuthorization } | { oauth2: OAuth2Authorization };

/** A connection as written in a rule file's `connections:` or sent to the API. */
export interface ConnectionDefinition {
  /** Letters, digits, `.`, `_`, `-`; 1 to 64 characters. Unique across files and the API. */
  name: string;
  description?: string;
  authorization: ConnectionAuthorization;
  /** Headers added to every request of the targets using it; values may be `env:NAME`. Secrets. */
  headers?: Record<string, string>;
  /** Query parameters added to the target's URL; values may be `env:NAME`. Secrets. */
  query?: Record<string, string>;
}

/** Marks a value read from the environment: `env:NAME`. */
export const CONNECTION_ENV_PREFIX = "env:";

/** What follows `env:`: an environment variable's name. */
export const ENV_VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One secret value of a connection and where it is (path segments under the connection). */
export interface ConnectionSecretValue {
  path: readonly (string | number)[];
  value: string;
}

/**
 * Every value of `connection` that may be a secret, and so may be `env:NAME` and is never
 * shown by the API: the API key, the password, the client secret, and every header and query
 * value. Other values (user name, client id, token URL, scope) are plain text.
 */
export function connectionSecretValues(connection: ConnectionDefinition): ConnectionSecretValue[] {
  const found: ConnectionSecretValue[] = [];
  const auth = connection.authorization;
  if ("apiKey" in auth)
    found.push({ path: ["authorization", "apiKey", "value"], value: auth.apiKey.value });
  else if ("basic" in auth)
    found.push({ path: ["authorization", "basic", "password"], value: auth.basic.password });
  else if ("oauth2" in auth)
    found.push({
      path: ["authorization", "oauth2", "clientSecret"],
      value: auth.oauth2.clientSecret,
    });
  for (const [name, value] of Object.entries(connection.headers ?? {}))
    found.push({ path: ["headers", name], value });
  for (const [name, value] of Object.entries(connection.query ?? {}))
    found.push({ path: ["query", name], value });
  return found;
}

/**
 * The value a secret stands for: the variable's value for `env:NAME`, else the literal.
 * Throws an Error naming the variable (never a value) when it is not set or not a name.
 */
export function resolveConnectionValue(value: string, env: EnvironmentLookup): string {
  if (!value.startsWith(CONNECTION_ENV_PREFIX)) return value;
  const name = value.slice(CONNECTION_ENV_PREFIX.length);
  if (!ENV_VARIABLE_NAME.test(name)) {
    throw new Error(
      `${JSON.stringify(value)} does not name an environment variable (env:NAME, letters, digits and _)`,
    );
  }
  const resolved = env(name);
  if (resolved === undefined || resolved === "")
    throw new Error(`environment variable ${name} is not set`);
  return resolved;
}

/**
 * A copy of `connection` with every `env:NAME` secret replaced by the variable's value.
 * Throws like {@link resolveConnectionValue}, the message prefixed with the value's place.
 */
export function resolveConnection(
  connection: ConnectionDefinition,
  env: EnvironmentLookup,
): ConnectionDefinition {
  const resolve = (value: string, path: string): string => {
    try {
      return resolveConnectionValue(value, env);
    } catch (error) {
      throw new Error(
        `connection ${JSON.stringify(connection.name)} ${path}: ${(error as Error).message}`,
      );
    }
  };
  const resolveMap = (map: Record<string, string> | undefined, field: string) =>
    map === undefined
      ? undefined
      : Object.fromEntries(Object.entries(map).map(([k, v]) => [k, resolve(v, `${field}.${k}`)]));
  const auth = connection.authorization;
  let authorization: ConnectionAuthorization;
  if ("apiKey" in auth) {
    authorization = {
      apiKey: { ...auth.apiKey, value: resolve(auth.apiKey.value, "authorization.apiKey.value") },
    };
  } else if ("basic" in auth) {
    authorization = {
      basic: {
        ...auth.basic,
        password: resolve(auth.basic.password, "authorization.basic.password"),
      },
    };
  } else {
    authorization = {
      oauth2: {
        ...auth.oauth2,
        clientSecret: resolve(auth.oauth2.clientSecret, "authorization.oauth2.clientSecret"),
      },
    };
  }
  const headers = resolveMap(connection.headers, "headers");
  const query = resolveMap(connection.query, "query");
  return {
    ...connection,
    authorization,
    ...(headers === undefined ? {} : { headers }),
    ...(query === undefined ? {} : { query }),
  };
}

/** A connection created through the API, as stored: its definition as sent (`env:` unread). */
export interface StoredConnection {
  name: string;
  definition: ConnectionDefinition;
  createdAtMs: number;
  updatedAtMs: number;
}

/**
 * Connections created through the API. Rule files' connections are not stored here; they
 * live on disk. Delivery looks a connection up on every attempt of a target that uses one,
 * so reads come from memory and return the same (frozen) object until it changes: callers
 * may cache work per object (a resolved secret, a token).
 */
export interface ConnectionStore {
  /** Every stored connection, by name. */
  list(): StoredConnection[];
  /** A memory lookup after the first read. */
  get(name: string): StoredConnection | undefined;
  /** Inserts or replaces. Throws `ServiceUnavailable` if the write fails. */
  put(connection: StoredConnection): void;
  /** False when there was none of that name. */
  delete(name: string): boolean;
}
