/**
 * How a JetStream message becomes a CloudEvent. A body that is a structured-mode CloudEvent
 * passes through unchanged; a binary-mode one (`ce-` headers) is put back together; anything
 * else is wrapped, with an id made of the stream and the message's stream sequence, which
 * every read of that message gives again.
 */
import type { CloudEvent, JsonValue } from "../../src/types.js";
import { readBinaryModeEvent } from "./binary-mode.js";

/** The type of a wrapped message. */
export const NATS_MESSAGE_TYPE = "relaybus.nats.message";

/** What the mapping needs of a message; the source reads it off the client's message. */
export interface NatsMessageFacts {
  stream: string;
  /** The message's sequence in its stream: fixed once stored, so a stable id. */
  streamSequence: number;
  subject: string;
  /** When the stream stored the message (ms since the epoch). */
  storedAtMs: number;
  headers: Iterable<[string, string]>;
  body: Uint8Array;
}

function isStructuredCloudEvent(value: unknown): value is CloudEvent {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const event = value as Record<string, unknown>;
  return (
    event.specversion === "1.0" &&
    [event.id, event.source, event.type].every(
      (attribute) => typeof attribute === "string" && attribute.length > 0,
    )
  );
}

/** The CloudEvent for a message (see the module comment for the three cases). */
export function natsMessageToCloudEvent(message: NatsMessageFacts): CloudEvent {
  const text = new TextDecoder().decode(message.body);
  let parsed: JsonValue | undefined;
  try {
    parsed = JSON.parse(text) as JsonValue;
  } catch {
    parsed = undefined;
  }
  if (isStructuredCloudEvent(parsed)) return parsed;
  const binary = readBinaryModeEvent(message.headers, message.body);
  if (binary !== undefined) return binary;
  return {
    specversion: "1.0",
    id: `${message.stream}:${message.streamSequence}`,
    source: `relaybus.nats/${message.stream}`,
    type: NATS_MESSAGE_TYPE,
    // The NATS subject is what publishers route on; CloudEvents has an attribute for it.
    subject: message.subject,
    time: new Date(message.storedAtMs).toISOString(),
    datacontenttype: "application/json",
    data: parsed ?? text,
  };
}
