/**
 * JSON Schema of the configuration. Every object is closed (`additionalProperties: false`),
 * so a typo in a key is an error rather than a silently ignored setting.
 */
import { isIP } from "node:net";
import { DURABILITY_MODES, LOG_ENGINES } from "./defaults.js";

const positiveInt = { type: "integer", minimum: 1 } as const;
/** Addresses and CIDR blocks; `cidr` is a format `load-config.ts` registers ({@link isCidr}). */
const cidrList = { type: "array", items: { type: "string", format: "cidr" } } as const;
/**
 * A price: decimal text, at most 12 digits before and 12 after the point (`"5.64"`,
 * `"0.000001"`). Text, not a number: a YAML `5.64` would be a float, and money never is.
 */
const price = { type: "string", pattern: "^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,12})?$" } as const;

/**
 * True for an IP address (`10.1.2.3`, `fd00::1`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`)
 * with at most 32 (IPv4) or 128 (IPv6) prefix bits.
 */
export function isCidr(text: string): boolean {
  const slash = text.indexOf("/");
  if (text.includes("%")) return false; // a zone names an interface, not a range
  const version = isIP(slash === -1 ? text : text.slice(0, slash));
  if (version === 0) return false;
  if (slash === -1) return true;
  const bits = text.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128);
}

export const CONFIG_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    server: {
      type: "object",
      additionalProperties: false,
      properties: {
        host: { type: "string", minLength: 1 },
        port: { type: "integer", minimum: 0, maximum: 65535 },
      },
    },
    auth: {
      type: "object",
      additionalProperties: false,
      properties: {
        required: { type: "boolean" },
        allowUnauthenticated: { type: "boolean" },
      },
    },
    dataDir: { type: "string", minLength: 1 },
    rulesDir: { type: "string", minLength: 1 },
    watchRules: { type: "boolean" },
    log: {
      type: "object",
      additionalProperties: false,
      properties: {
        engine: { enum: [...LOG_ENGINES] },
        durability: { enum: [...DURABILITY_MODES] },
        retentionHours: { type: "number", exclusiveMinimum: 0 },
        groupCommitMaxEvents: { type: "integer", minimum: 1, maximum: 100_000 },
        jetstream: {
          type: "object",
          additionalProperties: false,
          properties: {
            servers: {
              type: "array",
              minItems: 1,
              items: { type: "string", pattern: "^(nats|tls)://[^\\s,]+$" },
            },
            replicas: { enum: [1, 3, 5] },
            streamPrefix: { type: "string", pattern: "^[A-Za-z][A-Za-z0-9_-]{0,31}$" },
            duplicateWindowSeconds: { type: "integer", minimum: 1, maximum: 86_400 },
            claimSeconds: { type: "integer", minimum: 2, maximum: 3_600 },
            parkAfterSeconds: { type: "integer", minimum: 1, maximum: 86_400 },
          },
        },
      },
    },
    limits: {
      type: "object",
      additionalProperties: false,
      properties: {
        maxEventBytes: { type: "integer", minimum: 1024, maximum: 16_777_216 },
        maxEntriesPerRequest: { type: "integer", minimum: 1, maximum: 10_000 },
        maxRequestBytes: { type: "integer", minimum: 1024, maximum: 268_435_456 },
        maxJsonDepth: { type: "integer", minimum: 2, maximum: 1_000 },
        maxPatternBytes: { type: "integer", minimum: 64, maximum: 1_048_576 },
        maxPatternFields: { type: "integer", minimum: 1, maximum: 10_000 },
        maxPatternAlternatives: { type: "integer", minimum: 1, maximum: 100_000 },
        maxPatternWildcardScore: { type: "integer", minimum: 0, maximum: 10_000 },
        maxPatternRegexes: { type: "integer", minimum: 0, maximum: 1_000 },
        maxPatternValuesPerField: { type: "integer", minimum: 1, maximum: 100_000 },
        // The parser recurses once per level; 1,000 is maxJsonDepth's own maximum.
        maxPatternDepth: { type: "integer", minimum: 1, maximum: 1_000 },
        maxPatternWildcardStars: { type: "integer", minimum: 0, maximum: 1_000 },
        // Longer regexes pass the compiled-size limit (1,000 re2js instructions) anyway.
        maxPatternRegexLength: { type: "integer", minimum: 1, maximum: 4_096 },
        maxTransformBytes: { type: "integer", minimum: 16, maximum: 1_048_576 },
        maxJsonKeysPerObject: { type: "integer", minimum: 1, maximum: 1_000_000 },
        maxRulesPerBus: { type: "integer", minimum: 1, maximum: 100_000 },
        maxStreams: { type: "integer", minimum: 1, maximum: 10_000 },
        // 100: MAX_TARGETS_PER_RULE_CEILING of src/rules/model.ts, the rule schema's maxItems.
        maxTargetsPerRule: { type: "integer", minimum: 1, maximum: 100 },
        publishRatePerBus: { type: "number", minimum: 0, maximum: 10_000_000 },
      },
    },
    delivery: {
      type: "object",
      additionalProperties: false,
      properties: {
        timeoutMs: positiveInt,
        maxInFlight: positiveInt,
        connectionsPerOrigin: positiveInt,
        senderThreads: { type: "integer", minimum: 0, maximum: 64 },
        traceRetentionHours: { type: "number", minimum: 0 },
        outbound: {
          type: "object",
          additionalProperties: false,
          properties: {
            allowLoopback: { type: "boolean" },
            allowPrivate: { type: "boolean" },
            allowedCidrs: cidrList,
            deniedCidrs: cidrList,
            maxResponseBytes: { type: "integer", minimum: 0 },
          },
        },
        circuitBreaker: {
          type: "object",
          additionalProperties: false,
          properties: {
            failureThreshold: { type: "integer", minimum: 1, maximum: 10_000 },
            openSeconds: { type: "integer", minimum: 1, maximum: 86_400 },
            maxOpenSeconds: { type: "integer", minimum: 1, maximum: 86_400 },
          },
        },
        disableAfterFailingSeconds: { type: "integer", minimum: 60, maximum: 31_536_000 },
        retry: {
          type: "object",
          additionalProperties: false,
          properties: {
            maxAttempts: { type: "integer", minimum: 1, maximum: 185 },
            maxAgeSeconds: { type: "integer", minimum: 60, maximum: 86_400 },
            baseDelayMs: { type: "integer", minimum: 0 },
            factor: { type: "number", minimum: 1 },
            maxDelayMs: { type: "integer", minimum: 0 },
          },
        },
      },
    },
    transform: {
      type: "object",
      additionalProperties: false,
      properties: { timeoutMs: positiveInt },
    },
    streams: {
      type: "object",
      additionalProperties: false,
      properties: {
        cuEventsPerSecond: positiveInt,
        cuBytesPerSecond: positiveInt,
        scaleIntervalMs: positiveInt,
        scaleDownAfterIntervals: positiveInt,
        maxCU: { type: "integer", minimum: 1, maximum: 1024 },
      },
    },
    metering: {
      type: "object",
      additionalProperties: false,
      properties: {
        enabled: { type: "boolean" },
        rollupCron: { type: "string", format: "cron" },
      },
    },
    audit: {
      type: "object",
      additionalProperties: false,
      properties: {
        retentionDays: { type: "integer", minimum: 1, maximum: 36_500 },
      },
    },
    billing: {
      type: "object",
      additionalProperties: false,
      properties: {
        currency: { type: "string", pattern: "^[A-Z]{3}$" },
        prices: {
          type: "object",
          additionalProperties: false,
          properties: {
            publish: price,
            push: price,
            replay: price,
            redrive: price,
            "stream-events": price,
            "stream-cu-hours": price,
            "stream-idle": price,
          },
        },
        periodCron: { type: "string", format: "cron" },
        tenants: {
          type: "object",
          propertyNames: { pattern: "^[A-Za-z0-9._-]{1,64}$" },
          additionalProperties: { type: "string", minLength: 1, maxLength: 128 },
        },
      },
    },
  },
} as const;
