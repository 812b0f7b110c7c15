/**
 * How the sink turns a CloudEvent into an MQTT message, after the CloudEvents MQTT binding:
 * - `cloudevent` (structured mode): the payload is the event's JSON; on MQTT 5 the Content
 *   Type is `application/cloudevents+json`.
 * - `data` (binary mode): the payload is the event's data (its JSON, or the bytes of
 *   `data_base64`); on MQTT 5 the Content Type describes that payload and every other
 *   attribute travels as a User Property named after it (`id`, `source`, `type`, ...), so a
 *   subscriber (the MQTT source among them) can still tell the event apart.
 * MQTT 3.1.1 has no properties: the payload alone goes.
 */
import type { IPublishPacket } from "mqtt";
import type { CloudEvent, JsonValue } from "../../src/types.js";

/** What the sink writes: the whole event (default) or only its data. */
export const MQTT_SINK_FORMATS = ["cloudevent", "data"] as const;
export type MqttSinkFormat = (typeof MQTT_SINK_FORMATS)[number];

/** The MQTT protocol versions the sink speaks: 4 is MQTT 3.1.1, 5 is MQTT 5. */
export const MQTT_PROTOCOL_VERSIONS = [4, 5] as const;
export type MqttProtocolVersion = (typeof MQTT_PROTOCOL_VERSIONS)[number];

/** MQTT 5 PUBLISH properties, as mqtt.js takes them. */
export type PublishProperties = NonNullable<IPublishPacket["properties"]>;

/** One message to publish. */
export interface MqttMessage {
  payload: Buffer;
  properties: PublishProperties | undefined;
}

/** The content type of a structured-mode CloudEvent. */
export const CLOUDEVENTS_JSON = "application/cloudevents+json";

/** Whether a content type says JSON (`application/json`, `...+json`, with or without parameters). */
export function isJsonContentType(contentType: string): boolean {
  const mediaType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return mediaType === "application/json" || mediaType.endsWith("+json");
}

/** The message for `event` in `format`. */
export function eventToMessage(
  event: CloudEvent,
  format: MqttSinkFormat,
  protocolVersion: MqttProtocolVersion,
): MqttMessage {
  if (format === "cloudevent") {
    const payload = Buffer.from(JSON.stringify(event));
    return {
      payload,
      properties:
        protocolVersion === 5
          ? { contentType: CLOUDEVENTS_JSON, payloadFormatIndicator: true }
          : undefined,
    };
  }
  const { data, data_base64: dataBase64, datacontenttype: dataContentType, ...attributes } = event;
  const binary = dataBase64 !== undefined;
  const payload = binary
    ? Buffer.from(dataBase64, "base64")
    : Buffer.from(JSON.stringify(data ?? null));
  if (protocolVersion === 4) return { payload, properties: undefined };
  const contentType = binary
    ? (dataContentType ?? "application/octet-stream")
    : dataContentType !== undefined && isJsonContentType(dataContentType)
      ? dataContentType
      : "application/json";
  const userProperties: Record<string, string> = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined) userProperties[name] = attributeString(value);
  }
  return { payload, properties: { contentType, payloadFormatIndicator: !binary, userProperties } };
}

/** CloudEvents' canonical string form of an attribute value (extensions may hold any JSON). */
function attributeString(value: JsonValue): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/**
 * The size of the PUBLISH packet that carries `message` (bytes), to hold against the broker's
 * Maximum Packet Size before sending: a broker that gets a larger packet drops the connection.
 */
export function publishPacketBytes(
  topic: string,
  message: MqttMessage,
  qos: number,
  protocolVersion: MqttProtocolVersion,
): number {
  let variable = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0);
  if (protocolVersion === 5) {
    const propertyBytes = propertiesBytes(message.properties);
    variable += varIntBytes(propertyBytes) + propertyBytes;
  }
  const remaining = variable + message.payload.length;
  return 1 + varIntBytes(remaining) + remaining;
}

function propertiesBytes(properties: PublishProperties | undefined): number {
  if (properties === undefined) return 0;
  let bytes = 0;
  if (properties.payloadFormatIndicator !== undefined) bytes += 2;
  if (properties.contentType !== undefined) bytes += 3 + Buffer.byteLength(properties.contentType);
  for (const [name, values] of Object.entries(properties.userProperties ?? {})) {
    for (const value of Array.isArray(values) ? values : [values]) {
      bytes += 5 + Buffer.byteLength(name) + Buffer.byteLength(value);
    }
  }
  return bytes;
}

/** Bytes of an MQTT variable byte integer. */
function varIntBytes(value: number): number {
  return value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;
}
