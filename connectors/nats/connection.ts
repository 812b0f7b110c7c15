/**
 * What the NATS source and sink share about reaching a server: the config fields for the
 * servers and credentials, their JSON Schema, and the client options built from them.
 */
import type { ConnectionOptions } from "nats";

/** Where the client connects when the config names no server. */
export const DEFAULT_NATS_SERVERS = "nats://127.0.0.1:4222";

/** The connection fields of both the source's and the sink's config. */
export interface NatsConnectionConfig {
  /** One server URL or several (the client picks one and fails over); default `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /** User name, with `pass`, when the server asks for user and password. */
  user?: string;
  pass?: string;
  /** Token, when the server asks for a token. */
  token?: string;
}

const SERVER_URL = {
  type: "string",
  minLength: 1,
  description: "a server URL, e.g. nats://127.0.0.1:4222",
} as const;

/** JSON Schema properties of {@link NatsConnectionConfig}, for both definitions' schemas. */
export const NATS_CONNECTION_SCHEMA_PROPERTIES = {
  servers: {
    description: `one server URL or a list of them (default "${DEFAULT_NATS_SERVERS}")`,
    oneOf: [SERVER_URL, { type: "array", minItems: 1, items: SERVER_URL }],
  },
  user: { type: "string", minLength: 1, description: "user name, with pass (default: none)" },
  pass: { type: "string", description: "password, with user (default: none)" },
  token: { type: "string", minLength: 1, description: "authentication token (default: none)" },
} as const;

/** Schema rules over those properties: user and pass come together, and not with a token. */
export const NATS_CONNECTION_SCHEMA_RULES = {
  dependencies: { user: ["pass"], pass: ["user"] },
  not: { required: ["token", "user"] },
} as const;

/**
 * The client options for a validated config. The client reconnects forever: a lost server
 * is a retryable condition, which the sink reports per write and the source rides out.
 */
export function natsConnectionOptions(
  config: NatsConnectionConfig,
  name: string,
  timeoutMs: number,
): ConnectionOptions {
  return {
    servers: config.servers ?? DEFAULT_NATS_SERVERS,
    name,
    timeout: timeoutMs,
    maxReconnectAttempts: -1,
    ...(config.user === undefined ? {} : { user: config.user, pass: config.pass }),
    ...(config.token === undefined ? {} : { token: config.token }),
  };
}
