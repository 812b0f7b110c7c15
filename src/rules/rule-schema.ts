/**
 * JSON Schema of rule files and of one rule (JSON Schema draft-07, which ajv and the YAML
 * language server both read). Every object is closed, so a misspelt key is an error, not a
 * silently ignored setting. `rules/schema.json` is this schema written out for editors by
 * `scripts/write-rule-schema.ts`; a test keeps the two equal.
 *
 * Two checks are not expressible in draft-07 and are made in code beside it
 * (`validate-rule.ts`): target ids unique within a rule, and the pattern's own grammar
 * (src/patterns).
 */
import { TARGET_FORMATS } from "../types.js";
import {
  MAX_DISABLE_AFTER_FAILING_SECONDS,
  MAX_SIGNING_SECRETS,
  MAX_TARGET_IN_FLIGHT,
  MAX_TARGET_RATE_PER_SECOND,
  MAX_TARGETS_PER_RULE,
  MAX_TARGETS_PER_RULE_CEILING,
  MIN_DISABLE_AFTER_FAILING_SECONDS,
  NAME_PATTERN,
} from "./model.js";

/** Most delays an explicit retry list may hold. */
export const MAX_RETRY_DELAYS = 100;

/** Where the schema says it lives; editors only use it as an identifier. */
export const RULE_FILE_SCHEMA_ID = "https://relaybus.dev/schemas/rule-file.json";
/** Identifier of the one-rule schema (the body of `POST /v1/buses/{bus}/rules`). */
export const RULE_DEFINITION_SCHEMA_ID = "https://relaybus.dev/schemas/rule-definition.json";

/** Longest `description`, in characters. */
export const MAX_DESCRIPTION_LENGTH = 512;
/** Largest per-attempt timeout a target may set: 300,000 ms (5 minutes). */
export const MAX_TARGET_TIMEOUT_MS = 300_000;

/** An http or https URL with a host: the scheme is checked here, the rest by `new URL` at compile. */
export const WEBHOOK_URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#]+([/?#]\\S*)?$";

/** An HTTP header name (an RFC 9110 token). */
const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/** Identifier of the connection schema (the body of `PUT /v1/connections/{name}`). */
export const CONNECTION_DEFINITION_SCHEMA_ID = "https://relaybus.dev/schemas/connection-definition.json";
/** Most entries of a connection's `headers`, `query` or `oauth2.extraParams`. */
export const MAX_CONNECTION_ENTRIES = 32;
/** Longest value of a connection (a key, a header value, a URL), in characters. */
export const MAX_CONNECTION_VALUE_LENGTH = 4_096;

/** A string of a connection: never empty, bounded. Secrets' formats are not checked (or quoted). */
const connectionString = { type: "string", minLength: 1, maxLength: MAX_CONNECTION_VALUE_LENGTH } as const;
/** A map of a connection (`headers`, `query`, `extraParams`). */
function connectionMap(names: object, description: string) {
  return {
    type: "object",
    maxProperties: MAX_CONNECTION_ENTRIES,
    propertyNames: names,
    additionalProperties: { type: "string", maxLength: MAX_CONNECTION_VALUE_LENGTH },
    description,
  } as const;
}

const definitions = {
  name: {
    type: "string",
    pattern: NAME_PATTERN.source,
    description: "Letters, digits, '.', '_', '-'; 1 to 64 characters.",
  },
  description: { type: "string", maxLength: MAX_DESCRIPTION_LENGTH },
  retry: {
    type: "object",
    additionalProperties: false,
    description: "Retry policy; each field defaults to delivery.retry of the configuration.",
    properties: {
      maxAttempts: {
        type: "integer",
        minimum: 1,
        maximum: 185,
        description: "Attempts in all, the first included (default 185).",
      },
      maxAgeSeconds: {
        type: "integer",
        minimum: 60,
        maximum: 86_400,
        description: "Give up once the event is this old, in seconds (default 86,400).",
      },
      baseDelayMs: {
        type: "integer",
        minimum: 0,
        description: "First retry delay before jitter, ms (default 1,000).",
      },
      factor: {
        type: "number",
        minimum: 1,
        description: "Growth factor of the delay (default 2).",
      },
      maxDelayMs: {
        type: "integer",
        minimum: 0,
        description: "Largest delay before jitter, ms (default 300,000); also caps a receiver's Retry-After.",
      },
      delaysMs: {
        type: "array",
        minItems: 1,
        maxItems: MAX_RETRY_DELAYS,
        items: { type: "integer", minimum: 0, maximum: 86_400_000 },
        description:
          "Explicit delays before each retry, ms, instead of the exponential curve; the last one repeats. No jitter.",
      },
    },
  },
  webhook: {
    type: "object",
    additionalProperties: false,
    required: ["url"],
    properties: {
      url: { type: "string", pattern: WEBHOOK_URL_PATTERN, description: "An http or https URL." },
      headers: {
        type: "object",
        propertyNames: { pattern: HEADER_NAME_PATTERN },
        additionalProperties: { type: "string" },
        description: "Extra request headers.",
      },
      timeoutMs: {
        type: "integer",
        minimum: 1,
        maximum: MAX_TARGET_TIMEOUT_MS,
        description: "Per-attempt timeout, ms (default delivery.timeoutMs of the configuration).",
      },
    },
  },
  // The secrets' format is checked in code (signing-secrets.ts), not with a `pattern`: an
  // ajv pattern error quotes the value, and a secret must never reach a message.
  signing: {
    type: "object",
    additionalProperties: false,
    required: ["secrets"],
    description:
      "Standard Webhooks signing (rule files only; API rules use the target's secrets endpoint).",
    properties: {
      secrets: {
        type: "array",
        minItems: 1,
        maxItems: MAX_SIGNING_SECRETS,
        items: { type: "string", minLength: 1 },
        description:
          "Active secrets, each env:NAME (read when the file loads) or a literal whsec_... (HMAC-SHA256) or whsk_... (ed25519 private key).",
      },
    },
  },
  pacing: {
    type: "object",
    additionalProperties: false,
    description:
      "Rate and in-flight limits, circuit breaker and automatic disabling of the target; each field defaults to the configuration's delivery settings.",
    properties: {
      ratePerSecond: {
        type: "number",
        exclusiveMinimum: 0,
        maximum: MAX_TARGET_RATE_PER_SECOND,
        description: "Most attempts started per second, burst one second's worth (default unlimited).",
      },
      maxInFlight: {
        type: "integer",
        minimum: 1,
        maximum: MAX_TARGET_IN_FLIGHT,
        description: "Most attempts in flight at once (default 64), within delivery.maxInFlight for all targets.",
      },
      circuitBreaker: {
        description:
          "Stops sending after consecutive failed attempts (5xx, 408, timeouts, connection errors), then probes; false for none.",
        // if/else rather than oneOf: ajv would report the failure of every branch.
        if: { type: "object" },
        then: { $ref: "#/definitions/circuitBreaker" },
        else: { const: false },
      },
      disableAfterFailingSeconds: {
        type: "integer",
        minimum: MIN_DISABLE_AFTER_FAILING_SECONDS,
        maximum: MAX_DISABLE_AFTER_FAILING_SECONDS,
        description:
          "Disable the target once it has failed without a success for this long, in seconds (default 432,000 = 5 days).",
      },
    },
  },
  circuitBreaker: {
    type: "object",
    additionalProperties: false,
    properties: {
      failureThreshold: {
        type: "integer",
        minimum: 1,
        maximum: 10_000,
        description: "Consecutive failed attempts that open the circuit (default 10).",
      },
      openSeconds: {
        type: "integer",
        minimum: 1,
        maximum: 86_400,
        description: "How long it stays open before one probe, in seconds (default 30).",
      },
      maxOpenSeconds: {
        type: "integer",
        minimum: 1,
        maximum: 86_400,
        description: "Longest pause, reached by doubling after each failed probe, in seconds (default 600).",
      },
    },
  },
  connection: {
    type: "object",
    additionalProperties: false,
    required: ["name", "authorization"],
    properties: {
      name: { $ref: "#/definitions/name", description: "Unique across rule files and the API." },
      description: { $ref: "#/definitions/description" },
      authorization: {
        type: "object",
        additionalProperties: false,
        minProperties: 1,
        maxProperties: 1,
        description: "Exactly one of apiKey, basic, oauth2.",
        properties: {
          apiKey: {
            type: "object",
            additionalProperties: false,
            required: ["header", "value"],
            description: "An API key sent as a request header.",
            properties: {
              header: { type: "string", pattern: HEADER_NAME_PATTERN, maxLength: 256 },
              value: { ...connectionString, description: "The key: env:NAME or a literal." },
            },
          },
          basic: {
            type: "object",
            additionalProperties: false,
            required: ["username", "password"],
            description: "HTTP basic authentication.",
            properties: {
              username: connectionString,
              password: { ...connectionString, description: "env:NAME or a literal." },
            },
          },
          oauth2: {
            type: "object",
            additionalProperties: false,
            required: ["tokenUrl", "clientId", "clientSecret"],
            description: "OAuth 2 client credentials; the access token is sent as a Bearer token.",
            properties: {
              tokenUrl: { type: "string", pattern: WEBHOOK_URL_PATTERN, maxLength: MAX_CONNECTION_VALUE_LENGTH },
              clientId: connectionString,
              clientSecret: { ...connectionString, description: "env:NAME or a literal." },
              scope: connectionString,
              audience: connectionString,
              extraParams: connectionMap(
                { minLength: 1, maxLength: 256 },
                "More form parameters of the token request.",
              ),
              method: {
                enum: ["basic", "body"],
                description:
                  "How the client id and secret reach the token endpoint: an Authorization: Basic header (default) or form parameters.",
              },
            },
          },
        },
      },
      headers: connectionMap(
        { pattern: HEADER_NAME_PATTERN, maxLength: 256 },
        "Headers every request of the connection's targets carries; values env:NAME or literals.",
      ),
      query: connectionMap(
        { minLength: 1, maxLength: 256 },
        "Query parameters added to the targets' URLs; values env:NAME or literals.",
      ),
    },
  },
  target: {
    type: "object",
    additionalProperties: false,
    required: ["id", "webhook"],
    properties: {
      id: { $ref: "#/definitions/name", description: "Unique within the rule." },
      webhook: { $ref: "#/definitions/webhook" },
      format: {
        enum: [...TARGET_FORMATS],
        description:
          "How the target receives the event (default cloudevents-structured, or transform when a transform is given).",
      },
      transform: {
        type: "string",
        minLength: 1,
        description: "JSONata expression whose input is the CloudEvent; its output is the body.",
      },
      retry: { $ref: "#/definitions/retry" },
      signing: { $ref: "#/definitions/signing" },
      pacing: { $ref: "#/definitions/pacing" },
      connection: {
        $ref: "#/definitions/name",
        description: "The connection (authorization, headers, query) of the target's requests.",
      },
    },
    // `format: transform` needs an expression; an expression with another format would be
    // silently unused, so that is refused too.
    if: { required: ["format"], properties: { format: { const: "transform" } } },
    then: { required: ["transform"] },
    else: { if: { required: ["format"] }, then: { not: { required: ["transform"] } } },
  },
  rule: {
    type: "object",
    additionalProperties: false,
    required: ["name", "pattern"],
    properties: {
      name: { $ref: "#/definitions/name", description: "Unique within the bus." },
      description: { $ref: "#/definitions/description" },
      enabled: { type: "boolean", description: "Default true. A disabled rule matches nothing." },
      pattern: {
        type: "object",
        description:
          "An EventBridge event pattern over the CloudEvent; detail-type and detail mean type and data.",
      },
      targets: {
        type: "array",
        maxItems: MAX_TARGETS_PER_RULE_CEILING,
        items: { $ref: "#/definitions/target" },
        description: `0 to limits.maxTargetsPerRule targets (default ${MAX_TARGETS_PER_RULE}, at most ${MAX_TARGETS_PER_RULE_CEILING}), ids unique within the rule.`,
      },
    },
  },
} as const;

/** The schema definitions rule files share with other resources (streams reuse name, description, retry). */
export const SHARED_SCHEMA_DEFINITIONS = {
  name: definitions.name,
  description: definitions.description,
  retry: definitions.retry,
} as const;

/** Schema of one rule file (`RuleFile`). */
export const RULE_FILE_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: RULE_FILE_SCHEMA_ID,
  title: "Relaybus rule file",
  type: "object",
  additionalProperties: false,
  properties: {
    bus: {
      $ref: "#/definitions/name",
      description:
        "The bus these rules belong to; created if it does not exist. Optional in a file of connections only.",
    },
    description: { $ref: "#/definitions/description" },
    system: {
      type: "boolean",
      description: "A system bus: its publishes are metered like any bus's and priced at 0 (default false).",
    },
    rules: { type: "array", items: { $ref: "#/definitions/rule" } },
    connections: {
      type: "array",
      items: { $ref: "#/definitions/connection" },
      description: "Connections any rule may use (targets' connection); names unique across files and the API.",
    },
    streams: {
      type: "array",
      items: { type: "object" },
      description: "Event streams (source, filter, transform, sink under a CU quota); see the README's stream reference.",
    },
    schedules: {
      type: "array",
      items: { type: "object" },
      description: "Schedules that put an event on a bus (cron(...), rate(...), at(...)); see the README.",
    },
  },
  // `bus` says whose rules these are: required with rules, optional in a file of connections, streams or schedules only.
  if: { required: ["rules"] },
  then: { required: ["bus"] },
  definitions,
} as const;

/** Schema of one rule (`RuleDefinition`), as the REST API takes it. */
export const RULE_DEFINITION_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: RULE_DEFINITION_SCHEMA_ID,
  title: "Relaybus rule",
  $ref: "#/definitions/rule",
  definitions,
} as const;

/** Schema of one connection (`ConnectionDefinition`), as `PUT /v1/connections/{name}` takes it. */
export const CONNECTION_DEFINITION_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: CONNECTION_DEFINITION_SCHEMA_ID,
  title: "Relaybus connection",
  $ref: "#/definitions/connection",
  definitions,
} as const;
