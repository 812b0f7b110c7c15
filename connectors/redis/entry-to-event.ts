/**
 * How a Redis stream entry becomes a CloudEvent. An entry is a list of field/value pairs; its
 * body is the value of the field `event` (what the redis sink writes), else of the field
 * `data` (what the sink writes with `format: "data"`), else of its only field. A body that is
 * a structured CloudEvent passes through unchanged; any other entry is wrapped, with the
 * body's JSON (or the body as a string) as data, or, for an entry of several fields none of
 * them `event` or `data`, an object of all its fields (values as strings).
 */
import type { CloudEvent, JsonObject, JsonValue } from "../../src/types.js";

/** One entry as XREADGROUP and XAUTOCLAIM return it: fields and values alternate. */
export interface StreamEntry {
  id: string;
  fields: readonly string[];
}

/** The fields that carry a whole body, by preference. */
const BODY_FIELDS = ["event", "data"] as const;

/** The CloudEvent for `entry` of the stream at key `stream`. */
export function entryToEvent(stream: string, entry: StreamEntry): CloudEvent {
  const body = entryBody(entry.fields);
  const data = body === undefined ? fieldsObject(entry.fields) : parseBody(body);
  if (isCloudEvent(data)) return data as CloudEvent;
  const wrapped: CloudEvent = {
    specversion: "1.0",
    // The entry id is unique in its stream and never changes, so every read gives the same id.
    id: `${stream}:${entry.id}`,
    source: `relaybus.redis/${stream}`,
    type: "relaybus.redis.message",
    datacontenttype: "application/json",
    data,
  };
  const time = entryTime(entry.id);
  if (time !== undefined) wrapped.time = time;
  return wrapped;
}

function entryBody(fields: readonly string[]): string | undefined {
  for (const name of BODY_FIELDS) {
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  }
  return fields.length === 2 ? fields[1] : undefined;
}

function fieldsObject(fields: readonly string[]): JsonObject {
  const object: JsonObject = {};
  for (let i = 0; i + 1 < fields.length; i += 2)
    object[fields[i] as string] = fields[i + 1] as string;
  return object;
}

function parseBody(body: string): JsonValue {
  try {
    return JSON.parse(body) as JsonValue;
  } catch {
    return body;
  }
}

/** A structured CloudEvent: an object with specversion "1.0" and non-empty id, source and type. */
function isCloudEvent(value: JsonValue): value is JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const nonEmpty = (v: JsonValue | undefined) => typeof v === "string" && v.length > 0;
  return (
    value.specversion === "1.0" &&
    nonEmpty(value.id) &&
    nonEmpty(value.source) &&
    nonEmpty(value.type)
  );
}

/** An auto-generated entry id starts with the ms Redis added it at; ids set by hand may not. */
function entryTime(entryId: string): string | undefined {
  const ms = Number(entryId.split("-", 1)[0]);
  const date = new Date(ms);
  return Number.isSafeInteger(ms) && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
}
