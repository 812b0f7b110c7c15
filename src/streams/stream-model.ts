/**
 * Event streams, as written in rule files (`streams:`) and sent to `POST /v1/streams`.
 * A stream reads a source, keeps the events its filter matches, reshapes them with its
 * transform, and writes them to a sink in batches, paced by a CU quota. Source and sink are
 * connectors (connectors/): each is an object with one key, the connector's name, holding
 * that connector's config.
 *
 * ```yaml
 * streams:
 *   - name: orders-to-warehouse
 *     source: {bus: {bus: orders}}
 *     filter: {type: [order.created]}
 *     transform: '{"id": data.id, "total": data.total}'
 *     sink: {webhook: {url: https://warehouse.example.com/in, mode: batch}}
 *     batch: {maxEvents: 100, maxWaitMs: 200}
 *     capacity: {minCU: 1, maxCU: 4}
 * ```
 */
import type { RetryDefinition } from "../rules/model.js";
import type { JsonObject } from "../types.js";

/** Default most events in one sink batch. */
export const DEFAULT_BATCH_MAX_EVENTS = 100;
/** Default most bytes (events' structured JSON) in one sink batch: 1 MiB. */
export const DEFAULT_BATCH_MAX_BYTES = 1_048_576;
/** Default longest a source holds a partial batch, ms. */
export const DEFAULT_BATCH_MAX_WAIT_MS = 100;
/** The largest sink batch, in events. */
export const MAX_BATCH_EVENTS = 10_000;
/** The largest sink batch, in bytes: 16 MiB. */
export const MAX_BATCH_BYTES = 16_777_216;
/** The longest batch wait, ms. */
export const MAX_BATCH_WAIT_MS = 60_000;

/** How a stream is billed: by the CU-hour (default) or by the events it reads. */
export const STREAM_BILLING_MODES = ["cu", "events"] as const;
export type StreamBillingMode = (typeof STREAM_BILLING_MODES)[number];

/**
 * Where events go that the sink refused for good or that ran out of retries:
 * `store` keeps them with the stream (`GET /v1/streams/{name}/dead-letters`), `{bus}`
 * publishes them to a bus, `none` fails the stream instead (it stops at that batch until it
 * is started again; nothing is skipped).
 */
export type DeadLetterDefinition = "store" | "none" | { bus: string };

/** A stream as written. */
export interface StreamDefinition {
  /** Letters, digits, '.', '_', '-'; 1 to 64 characters; unique across files and the API. */
  name: string;
  description?: string;
  /** `{<source connector>: <its config>}`. */
  source: Record<string, JsonObject>;
  /** An EventBridge event pattern on the CloudEvent; events it does not match are dropped (counted). */
  filter?: JsonObject;
  /**
   * A JSONata expression over the CloudEvent; its result becomes the event's `data`. A result
   * of nothing drops the event (counted as filtered).
   */
  transform?: string;
  /** `{<sink connector>: <its config>}`. */
  sink: Record<string, JsonObject>;
  batch?: {
    /** Most events per sink write (1 to 10,000; default 100). */
    maxEvents?: number;
    /** Most bytes per sink write (1 KiB to 16 MiB; default 1 MiB). An event larger goes alone. */
    maxBytes?: number;
    /** Longest a source holds a partial batch, ms (0 to 60,000; default 100). */
    maxWaitMs?: number;
  };
  capacity?: {
    /** The fewest CUs (at least 1; default 1). */
    minCU?: number;
    /** The most CUs the scaler may grow to (default minCU; at most `streams.maxCU`). */
    maxCU?: number;
    /** `cu` (default): billed by the CU-hour; `events`: by the events read. */
    billing?: StreamBillingMode;
  };
  /** How a failed sink write is retried; each field defaults to `delivery.retry`. */
  retry?: RetryDefinition;
  deadLetter?: DeadLetterDefinition;
  /** Whether the stream runs when created (default `running`); later, pause and resume say. */
  state?: "running" | "paused";
}

/** Where a stream is defined. */
export type StreamOrigin = { kind: "api" } | { kind: "file"; file: string; line: number };

/** The one key of a `source` or `sink` object, and its config. */
export function connectorOf(endpoint: Record<string, JsonObject>): { name: string; config: JsonObject } {
  const [name, config] = Object.entries(endpoint)[0]!;
  return { name, config };
}
