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
import { MAX_SIGNING_SECRETS, MAX_TARGETS_PER_RULE, NAME_PATTERN } from "./model.js";

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
        maxItems: MAX_TARGETS_PER_RULE,
        items: { $ref: "#/definitions/target" },
        description: `0 to ${MAX_TARGETS_PER_RULE} targets, ids unique within the rule.`,
      },
    },
  },
} as const;

/** Schema of one rule file (`RuleFile`). */
export const RULE_FILE_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: RULE_FILE_SCHEMA_ID,
  title: "Relaybus rule file",
  type: "object",
  additionalProperties: false,
  required: ["bus"],
  properties: {
    bus: {
      $ref: "#/definitions/name",
      description: "The bus these rules belong to; created if it does not exist.",
    },
    description: { $ref: "#/definitions/description" },
    rules: { type: "array", items: { $ref: "#/definitions/rule" } },
  },
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
