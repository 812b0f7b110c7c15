/**
 * JSON Schema of a stream definition (`StreamDefinition`). Source and sink are checked here
 * only as "one key naming a connector"; the connector's own schema checks its config
 * (compile-stream.ts), so that each connector stays the one place its config is defined.
 */
import { MAX_CU_CEILING } from "./cu-quota.js";
import {
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_BATCH_WAIT_MS,
  STREAM_BILLING_MODES,
} from "./stream-model.js";
import { SHARED_SCHEMA_DEFINITIONS } from "../rules/rule-schema.js";

export const STREAM_DEFINITION_SCHEMA_ID = "https://relaybus.dev/schemas/stream-definition.json";

const endpoint = (what: string) => ({
  type: "object",
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: { type: "object" },
  description: `{<${what} connector>: <its config>}: one key, the connector's name (GET /v1/connectors lists them).`,
});

export const STREAM_DEFINITION_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: STREAM_DEFINITION_SCHEMA_ID,
  title: "Relaybus stream",
  type: "object",
  additionalProperties: false,
  required: ["name", "source", "sink"],
  properties: {
    name: { $ref: "#/definitions/name" },
    description: { $ref: "#/definitions/description" },
    source: endpoint("source"),
    filter: { type: "object", description: "An EventBridge event pattern on the CloudEvent." },
    transform: { type: "string", minLength: 1, description: "JSONata over the CloudEvent; the result becomes data." },
    sink: endpoint("sink"),
    batch: {
      type: "object",
      additionalProperties: false,
      properties: {
        maxEvents: { type: "integer", minimum: 1, maximum: MAX_BATCH_EVENTS, description: "Most events per sink write (default 100)." },
        maxBytes: { type: "integer", minimum: 1_024, maximum: MAX_BATCH_BYTES, description: "Most bytes per sink write (default 1 MiB)." },
        maxWaitMs: { type: "integer", minimum: 0, maximum: MAX_BATCH_WAIT_MS, description: "Longest a partial batch waits, ms (default 100)." },
      },
    },
    capacity: {
      type: "object",
      additionalProperties: false,
      properties: {
        minCU: { type: "integer", minimum: 1, maximum: MAX_CU_CEILING, description: "The fewest CUs (default 1)." },
        maxCU: { type: "integer", minimum: 1, maximum: MAX_CU_CEILING, description: "The most CUs (default minCU)." },
        billing: { enum: [...STREAM_BILLING_MODES], description: "cu (by the CU-hour, default) or events (by the events read)." },
      },
    },
    retry: { $ref: "#/definitions/retry" },
    deadLetter: {
      oneOf: [
        { enum: ["store", "none"] },
        {
          type: "object",
          additionalProperties: false,
          required: ["bus"],
          properties: { bus: { $ref: "#/definitions/name" } },
        },
      ],
      description: "store (default), none (the stream fails instead), or {bus: name}.",
    },
    state: { enum: ["running", "paused"], description: "Whether the stream runs when created (default running)." },
  },
  definitions: SHARED_SCHEMA_DEFINITIONS,
} as const;
