/**
 * How the RabbitMQ source turns a delivered message into a CloudEvent: a body that is a
 * structured-mode CloudEvent passes through unchanged; anything else is wrapped, with an id
 * that is the same on every delivery of the message.
 */
import { createHash } from "node:crypto";
import type { Message } from "amqplib";
import type { CloudEvent, JsonValue } from "../../src/types.js";

/** The `type` of a wrapped message. */
export const WRAPPED_MESSAGE_TYPE = "relaybus.rabbitmq.message";

/** The latest time RFC 3339 can write (year 9999), in ms since the epoch. */
const MAX_RFC3339_MS = 253_402_300_799_999;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The `source` of a message wrapped from `queue`. */
export function wrappedSource(queue: string): string {
  return `relaybus.rabbitmq/${queue}`;
}

/** The CloudEvent a message delivered from `queue` stands for. */
export function messageToEvent(message: Message, queue: string): CloudEvent {
  let text: string | undefined;
  try {
    text = strictUtf8.decode(message.content);
  } catch {
    text = undefined;
  }
  let parsed: unknown = text;
  if (text !== undefined) {
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      // Not JSON: the UTF-8 text is the data.
    }
    if (isCloudEvent(parsed)) return parsed;
  }
  const event: CloudEvent = {
    specversion: "1.0",
    id: messageEventId(message),
    source: wrappedSource(queue),
    type: WRAPPED_MESSAGE_TYPE,
  };
  const time = publishTime(message.properties.timestamp);
  if (time !== undefined) event.time = time;
  if (text === undefined) {
    // Bytes that are not UTF-8 cannot be JSON or a string: carry them as CloudEvents binary data.
    event.datacontenttype =
      typeof message.properties.contentType === "string"
        ? message.properties.contentType
        : "application/octet-stream";
    event.data_base64 = message.content.toString("base64");
  } else {
    event.datacontenttype = "application/json";
    event.data = parsed as JsonValue;
  }
  return event;
}

function isCloudEvent(value: unknown): value is CloudEvent {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const candidate = value as Record<string, unknown>;
  return (
    candidate.specversion === "1.0" &&
    [candidate.id, candidate.source, candidate.type].every(
      (field) => typeof field === "string" && field.length > 0,
    )
  );
}

/**
 * The wrapped event's id. RabbitMQ gives a message no id of its own (delivery tags count per
 * channel and change on redelivery), so the publisher's `message_id` property is used when it
 * set one. Otherwise the id is a SHA-256 of what the publisher sent and what does not change
 * between deliveries: exchange, routing key, properties, headers and body. Headers starting
 * with `x-` are left out, because the broker writes those itself (`x-delivery-count` grows on
 * each redelivery from a quorum queue, `x-death` on dead-lettering). The price: two messages
 * without a message id that are identical in all of these get the same id, and a sink that
 * deduplicates on ids keeps only one of them.
 */
export function messageEventId(message: Message): string {
  const messageId: unknown = message.properties.messageId;
  if (typeof messageId === "string" && messageId.length > 0) return messageId;
  const headers = Object.fromEntries(
    Object.entries((message.properties.headers ?? {}) as Record<string, unknown>).filter(
      ([name]) => !name.startsWith("x-"),
    ),
  );
  const identity = canonicalJson({
    exchange: message.fields.exchange,
    routingKey: message.fields.routingKey,
    properties: { ...message.properties, headers },
    body: message.content,
  });
  return createHash("sha256").update(identity).digest("hex");
}

/**
 * JSON with sorted keys, so equal values hash equally whatever order the header table had.
 * Buffers (binary header values, the body) become base64 and 64-bit integers strings.
 */
function canonicalJson(value: unknown): string {
  if (value === undefined || value === null) return "null";
  if (Buffer.isBuffer(value)) return JSON.stringify({ base64: value.toString("base64") });
  if (typeof value === "bigint") return JSON.stringify(value.toString());
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, field]) => field !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, field]) => `${JSON.stringify(key)}:${canonicalJson(field)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * The AMQP `timestamp` property (seconds since the epoch) as RFC 3339, when the publisher set
 * one. A value past year 9999 as seconds is read as milliseconds, the common publisher mistake.
 */
function publishTime(timestamp: unknown): string | undefined {
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp) || timestamp < 0)
    return undefined;
  const ms = timestamp * 1000 <= MAX_RFC3339_MS ? timestamp * 1000 : timestamp;
  return ms <= MAX_RFC3339_MS ? new Date(ms).toISOString() : undefined;
}
