/**
 * How the source turns an MQTT message into a CloudEvent, in this order:
 * 1. A payload that is a CloudEvent in JSON (structured mode) passes through unchanged.
 * 2. MQTT 5 User Properties `specversion` 1.0, `id`, `source` and `type` (the CloudEvents
 *    MQTT binding's binary mode, as the MQTT sink writes with `format: data`) make the event
 *    from those properties; the payload is its data.
 * 3. Anything else is wrapped: source `relaybus.mqtt/<topic>`, type `relaybus.mqtt.message`,
 *    data the JSON payload, else its UTF-8 text, else its bytes (`data_base64`).
 *
 * A wrapped message's id must be the same every time the broker delivers it. MQTT gives a
 * message no id of its own: packet identifiers are per connection and reused as soon as a
 * message is acknowledged. So the id is the publisher's, when it set a User Property `id`
 * (or `ce_id`), and otherwise a hash of topic and payload: stable across redeliveries, but
 * the same for two messages with the same payload on the same topic, which a consumer that
 * drops duplicates by id would then take for one. MQTT has no broker timestamp either, so a
 * wrapped event has no `time`.
 */
import { createHash } from "node:crypto";
import type { IPublishPacket } from "mqtt";
import type { CloudEvent, JsonValue } from "../../src/types.js";
import { isJsonContentType } from "./event-to-message.js";

/** The parts of a received PUBLISH the mapping reads. */
export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  properties?: IPublishPacket["properties"];
}

/** `type` of a wrapped message. */
export const WRAPPED_EVENT_TYPE = "relaybus.mqtt.message";

/** CloudEvents attribute names: lower-case letters and digits (the binding's User Property names). */
const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;

const OCTET_STREAM = "application/octet-stream";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The CloudEvent for a received message. */
export function messageToEvent(message: ReceivedMessage): CloudEvent {
  const text = decodeUtf8(message.payload);
  const contentType = message.properties?.contentType;
  // A structured CloudEvent says so (application/cloudevents+json) or says nothing.
  const json =
    text === undefined || (contentType !== undefined && !isJsonContentType(contentType))
      ? undefined
      : parseJson(text);
  if (json !== undefined && isCloudEvent(json.value)) return json.value;

  const properties = userProperties(message);
  const binary = fromBinaryMode(properties, contentType, message.payload, text);
  if (binary !== undefined) return binary;

  const id = properties.get("id") ?? properties.get("ce_id") ?? hashId(message);
  const event: CloudEvent = {
    specversion: "1.0",
    id,
    source: `relaybus.mqtt/${message.topic}`,
    type: WRAPPED_EVENT_TYPE,
    datacontenttype: "application/json",
  };
  const data = payloadData(message.payload, text, contentType);
  if (data.base64 === undefined) event.data = data.value;
  else {
    event.datacontenttype = contentType ?? OCTET_STREAM;
    event.data_base64 = data.base64;
  }
  return event;
}

function decodeUtf8(payload: Buffer): string | undefined {
  try {
    return utf8.decode(payload);
  } catch {
    return undefined;
  }
}

/** The parsed value, boxed so that a payload `null` is told apart from "not JSON". */
function parseJson(text: string): { value: JsonValue } | undefined {
  try {
    return { value: JSON.parse(text) as JsonValue };
  } catch {
    return undefined;
  }
}

function isCloudEvent(value: JsonValue): value is CloudEvent & JsonValue {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  return (
    value.specversion === "1.0" &&
    nonEmpty(value.id) &&
    nonEmpty(value.source) &&
    nonEmpty(value.type)
  );
}

function nonEmpty(value: JsonValue | undefined): value is string {
  return typeof value === "string" && value.length > 0;
}

/** User Properties by name (the first value when a name repeats). */
function userProperties(message: ReceivedMessage): Map<string, string> {
  const found = new Map<string, string>();
  for (const [name, values] of Object.entries(message.properties?.userProperties ?? {})) {
    const value = Array.isArray(values) ? values[0] : values;
    if (value !== undefined) found.set(name, value);
  }
  return found;
}

function fromBinaryMode(
  properties: Map<string, string>,
  contentType: string | undefined,
  payload: Buffer,
  text: string | undefined,
): CloudEvent | undefined {
  const id = properties.get("id");
  const source = properties.get("source");
  const type = properties.get("type");
  if (
    properties.get("specversion") !== "1.0" ||
    !nonEmpty(id) ||
    !nonEmpty(source) ||
    !nonEmpty(type)
  )
    return undefined;
  const event: CloudEvent = { specversion: "1.0", id, source, type };
  for (const [name, value] of properties) {
    if (
      ATTRIBUTE_NAME.test(name) &&
      !(name in event) &&
      name !== "data" &&
      name !== "datacontenttype"
    )
      event[name] = value;
  }
  const dataContentType = contentType ?? properties.get("datacontenttype");
  if (dataContentType !== undefined) event.datacontenttype = dataContentType;
  const data = payloadData(payload, text, dataContentType);
  if (data.base64 === undefined) event.data = data.value;
  else event.data_base64 = data.base64;
  return event;
}

/**
 * The payload as event data: bytes that are not UTF-8, or say they are an octet stream, as
 * base64; a payload without a content type or with a JSON one parsed when it is JSON; the
 * rest as text.
 */
function payloadData(
  payload: Buffer,
  text: string | undefined,
  contentType: string | undefined,
): { value: JsonValue; base64?: undefined } | { base64: string } {
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
  if (text === undefined || mediaType === OCTET_STREAM)
    return { base64: payload.toString("base64") };
  if (contentType === undefined || isJsonContentType(contentType))
    return parseJson(text) ?? { value: text };
  return { value: text };
}

/** A wrapped message's id when its publisher gave none: a hash of topic and payload. */
function hashId(message: ReceivedMessage): string {
  const hash = createHash("sha256")
    .update(message.topic)
    .update("\0")
    .update(message.payload)
    .digest("hex");
  return `mqtt-${hash.slice(0, 32)}`;
}
