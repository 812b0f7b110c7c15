/**
 * How a row read by the postgres source becomes a CloudEvent. A payload column holding a
 * JSON CloudEvent (specversion "1.0", id, source, type) passes through unchanged; anything
 * else is wrapped, with an id made of the table and the row's id column, so that every read of
 * the same row gives the same id.
 */
import type { CloudEvent, JsonValue } from "../../src/types.js";

/** PostgreSQL type oids whose values the driver has already parsed from JSON. */
const JSON_TYPE_OIDS = new Set([114, 3802]); // json, jsonb

/** Whether a value is a structured-mode CloudEvent, to pass through as it is. */
export function isCloudEvent(value: unknown): value is CloudEvent {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const event = value as Record<string, unknown>;
  return (
    event.specversion === "1.0" &&
    [event.id, event.source, event.type].every(
      (attribute) => typeof attribute === "string" && attribute.length > 0,
    )
  );
}

/**
 * A payload column's value as JSON: json and jsonb as the driver parsed them; text and bytea
 * parsed as JSON when they hold JSON, else kept as the (UTF-8) string.
 */
export function payloadJson(value: unknown, typeOid: number): JsonValue {
  if (JSON_TYPE_OIDS.has(typeOid)) return value as JsonValue;
  const text = Buffer.isBuffer(value) ? value.toString("utf8") : value;
  if (typeof text === "string") {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      return text;
    }
  }
  return JSON.parse(JSON.stringify(value ?? null)) as JsonValue;
}

/** The CloudEvent wrapping a row (or a payload that is not a CloudEvent). */
export function rowEvent(row: {
  table: string;
  id: string;
  time: string | undefined;
  data: JsonValue;
}): CloudEvent {
  return {
    specversion: "1.0",
    id: `${row.table}:${row.id}`,
    source: `relaybus.postgres/${row.table}`,
    type: "relaybus.postgres.row",
    ...(row.time === undefined ? {} : { time: row.time }),
    datacontenttype: "application/json",
    data: row.data,
  };
}
