/**
 * Loads the configuration: defaults < YAML file < environment < flags, then validates the
 * merged result once with ajv. This module is the only reader of `process.env`.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { validate as isCronExpression } from "node-cron";
import { parseDocument } from "yaml";
import { RelaybusError } from "../errors.js";
import { CONFIG_SCHEMA, isCidr } from "./config-schema.js";
import { DEFAULT_CONFIG, type RelaybusConfig } from "./defaults.js";

/** Settings given as command-line flags; each wins over file and environment. */
export interface ConfigFlags {
  config?: string;
  host?: string;
  port?: number | string;
  dataDir?: string;
  rulesDir?: string;
  /** `--allow-loopback-targets`: delivery.outbound.allowLoopback, for trying Relaybus on one machine. */
  allowLoopbackTargets?: boolean;
  /** `--allow-unauthenticated`: auth.allowUnauthenticated. */
  allowUnauthenticated?: boolean;
  /** `--log-engine`: log.engine (`sqlite` or `jetstream`). */
  logEngine?: string;
  /** `--nats-servers`: log.jetstream.servers, comma-separated URLs. */
  natsServers?: string;
}

/** Environment variables Relaybus reads, and the setting each one sets. */
export const ENVIRONMENT_VARIABLES = {
  RELAYBUS_CONFIG: "path of a YAML configuration file",
  RELAYBUS_HOST: "server.host",
  RELAYBUS_PORT: "server.port",
  RELAYBUS_DATA_DIR: "dataDir",
  RELAYBUS_RULES_DIR: "rulesDir",
  RELAYBUS_DURABILITY: "log.durability",
  RELAYBUS_LOG_ENGINE: "log.engine (sqlite or jetstream)",
  RELAYBUS_NATS_SERVERS: "log.jetstream.servers, comma-separated (nats://host:port,...)",
  RELAYBUS_JETSTREAM_REPLICAS: "log.jetstream.replicas (1, 3 or 5)",
  RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "delivery.outbound.allowLoopback (true or false)",
  RELAYBUS_OUTBOUND_ALLOW_PRIVATE: "delivery.outbound.allowPrivate (true or false)",
  RELAYBUS_DELIVERY_SENDER_THREADS: "delivery.senderThreads (0 sends from the main thread)",
  RELAYBUS_METERING_ENABLED: "metering.enabled (true or false)",
  RELAYBUS_URL: "the server the CLI's client commands talk to (default http://127.0.0.1:8080)",
  RELAYBUS_AUTH_REQUIRED: "auth.required (true or false)",
  RELAYBUS_ALLOW_UNAUTHENTICATED: "auth.allowUnauthenticated (true or false)",
  RELAYBUS_API_KEY: "the API key (rb_...) the CLI's client commands send",
} as const;

/** The base URL of the server that client commands (`relaybus put`) talk to. */
export function clientUrl(flag: string | undefined, env: Record<string, string | undefined> = process.env): string {
  return (flag ?? env.RELAYBUS_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
}

/** The API key client commands send (`--api-key`, else `RELAYBUS_API_KEY`); undefined: none. */
export function clientApiKey(flag: string | undefined, env: Record<string, string | undefined> = process.env): string | undefined {
  const key = flag ?? env.RELAYBUS_API_KEY;
  return key === undefined || key.trim() === "" ? undefined : key.trim();
}

type PartialDeep<T> = { [K in keyof T]?: T[K] extends object ? PartialDeep<T[K]> : T[K] };
type Layer = PartialDeep<RelaybusConfig> & Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addFormat("cidr", isCidr);
ajv.addFormat("cron", (text: string) => isCronExpression(text));
const validateConfig = ajv.compile(CONFIG_SCHEMA);

/** Builds the configuration from its layers; throws `InvalidConfig` naming every problem. */
export function loadConfig(
  flags: ConfigFlags = {},
  env: Record<string, string | undefined> = process.env,
): RelaybusConfig {
  const file = flags.config ?? env.RELAYBUS_CONFIG;
  const layers: { name: string; values: Layer }[] = [];
  if (file !== undefined) layers.push({ name: file, values: readConfigFile(file) });
  layers.push({ name: "environment", values: fromEnvironment(env) });
  layers.push({ name: "flags", values: fromFlags(flags) });

  let merged: Record<string, unknown> = structuredClone(DEFAULT_CONFIG) as never;
  for (const layer of layers) merged = mergeDeep(merged, layer.values);

  if (!validateConfig(merged)) {
    const problems = (validateConfig.errors ?? []).map(describeAjvError);
    const where = layers.map((l) => l.name).join(", ");
    throw new RelaybusError(
      "InvalidConfig",
      `invalid configuration (from defaults, ${where}):\n  ${problems.join("\n  ")}`,
      { details: { problems } },
    );
  }
  return merged as unknown as RelaybusConfig;
}

function readConfigFile(path: string): Layer {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new RelaybusError("InvalidConfig", `cannot read configuration file ${path}: ${(error as Error).message}`);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0]?.line ?? 1;
    throw new RelaybusError("InvalidConfig", `${path}:${line}: ${first.message}`);
  }
  const values: unknown = doc.toJS() ?? {};
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    throw new RelaybusError("InvalidConfig", `${path}: the configuration must be a YAML mapping`);
  }
  return values as Layer;
}

function fromEnvironment(env: Record<string, string | undefined>): Layer {
  const layer: Layer = {};
  if (env.RELAYBUS_HOST !== undefined) layer.server = { ...layer.server, host: env.RELAYBUS_HOST };
  if (env.RELAYBUS_PORT !== undefined) {
    layer.server = { ...layer.server, port: toNumber(env.RELAYBUS_PORT, "RELAYBUS_PORT") };
  }
  if (env.RELAYBUS_DATA_DIR !== undefined) layer.dataDir = env.RELAYBUS_DATA_DIR;
  if (env.RELAYBUS_RULES_DIR !== undefined) layer.rulesDir = env.RELAYBUS_RULES_DIR;
  const log: PartialDeep<RelaybusConfig["log"]> = {};
  if (env.RELAYBUS_DURABILITY !== undefined) log.durability = env.RELAYBUS_DURABILITY as never;
  if (env.RELAYBUS_LOG_ENGINE !== undefined) log.engine = env.RELAYBUS_LOG_ENGINE as never;
  const jetstream: PartialDeep<RelaybusConfig["log"]["jetstream"]> = {};
  if (env.RELAYBUS_NATS_SERVERS !== undefined) jetstream.servers = splitList(env.RELAYBUS_NATS_SERVERS);
  if (env.RELAYBUS_JETSTREAM_REPLICAS !== undefined) {
    jetstream.replicas = toNumber(env.RELAYBUS_JETSTREAM_REPLICAS, "RELAYBUS_JETSTREAM_REPLICAS");
  }
  if (Object.keys(jetstream).length > 0) log.jetstream = jetstream;
  if (Object.keys(log).length > 0) layer.log = log;
  const outbound: { allowLoopback?: boolean; allowPrivate?: boolean } = {};
  if (env.RELAYBUS_OUTBOUND_ALLOW_LOOPBACK !== undefined) {
    outbound.allowLoopback = toBoolean(env.RELAYBUS_OUTBOUND_ALLOW_LOOPBACK, "RELAYBUS_OUTBOUND_ALLOW_LOOPBACK");
  }
  if (env.RELAYBUS_OUTBOUND_ALLOW_PRIVATE !== undefined) {
    outbound.allowPrivate = toBoolean(env.RELAYBUS_OUTBOUND_ALLOW_PRIVATE, "RELAYBUS_OUTBOUND_ALLOW_PRIVATE");
  }
  const delivery: PartialDeep<RelaybusConfig["delivery"]> = {};
  if (Object.keys(outbound).length > 0) delivery.outbound = outbound;
  if (env.RELAYBUS_DELIVERY_SENDER_THREADS !== undefined) {
    delivery.senderThreads = toNumber(env.RELAYBUS_DELIVERY_SENDER_THREADS, "RELAYBUS_DELIVERY_SENDER_THREADS");
  }
  if (Object.keys(delivery).length > 0) layer.delivery = delivery;
  const auth: { required?: boolean; allowUnauthenticated?: boolean } = {};
  if (env.RELAYBUS_AUTH_REQUIRED !== undefined) {
    auth.required = toBoolean(env.RELAYBUS_AUTH_REQUIRED, "RELAYBUS_AUTH_REQUIRED");
  }
  if (env.RELAYBUS_ALLOW_UNAUTHENTICATED !== undefined) {
    auth.allowUnauthenticated = toBoolean(env.RELAYBUS_ALLOW_UNAUTHENTICATED, "RELAYBUS_ALLOW_UNAUTHENTICATED");
  }
  if (Object.keys(auth).length > 0) layer.auth = auth;
  if (env.RELAYBUS_METERING_ENABLED !== undefined) {
    layer.metering = { enabled: toBoolean(env.RELAYBUS_METERING_ENABLED, "RELAYBUS_METERING_ENABLED") };
  }
  return layer;
}

function fromFlags(flags: ConfigFlags): Layer {
  const layer: Layer = {};
  if (flags.host !== undefined) layer.server = { ...layer.server, host: flags.host };
  if (flags.port !== undefined) {
    layer.server = { ...layer.server, port: toNumber(String(flags.port), "--port") };
  }
  if (flags.dataDir !== undefined) layer.dataDir = flags.dataDir;
  if (flags.rulesDir !== undefined) layer.rulesDir = flags.rulesDir;
  if (flags.allowLoopbackTargets === true) layer.delivery = { outbound: { allowLoopback: true } };
  if (flags.allowUnauthenticated === true) layer.auth = { allowUnauthenticated: true };
  const log: PartialDeep<RelaybusConfig["log"]> = {};
  if (flags.logEngine !== undefined) log.engine = flags.logEngine as never;
  if (flags.natsServers !== undefined) log.jetstream = { servers: splitList(flags.natsServers) };
  if (Object.keys(log).length > 0) layer.log = log;
  return layer;
}

/** `a, b,c` → `["a", "b", "c"]`: a list setting given as one string. */
function splitList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

function toNumber(text: string, name: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw new RelaybusError("InvalidConfig", `${name}: expected a number, got ${JSON.stringify(text)}`);
  }
  return value;
}

function toBoolean(text: string, name: string): boolean {
  const value = text.trim().toLowerCase();
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new RelaybusError("InvalidConfig", `${name}: expected true or false, got ${JSON.stringify(text)}`);
}

function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      isPlainObject(current) && isPlainObject(value) ? mergeDeep(current, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeAjvError(error: ErrorObject): string {
  const pointer = error.instancePath === "" ? "/" : error.instancePath;
  if (error.keyword === "additionalProperties") {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return `${pointer}: unknown setting ${JSON.stringify(extra)}`;
  }
  if (error.keyword === "enum") {
    const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
    return `${pointer}: must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  return `${pointer}: ${error.message ?? "is invalid"}`;
}
