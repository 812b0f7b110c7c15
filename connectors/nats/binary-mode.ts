/**
 * CloudEvents binary content mode over NATS headers (the NATS protocol binding): each
 * context attribute travels as a `ce-<attribute>` header, percent-encoded as in the HTTP
 * binding, and the message body is the event data. The sink writes it when it sends only the
 * data (`format: "data"`), so the event's identity is not lost; the source reads it back.
 */
import type { CloudEvent, JsonValue } from "../../src/types.js";

const PREFIX = "ce-";

/** HTTP binding 3.1.3.2: space, `"`, `%` and anything outside printable ASCII are percent-encoded. */
function encodeHeaderValue(value: string): string {
  // Byte by byte from UTF-8, not encodeURIComponent, which throws on a lone surrogate.
  return value.replace(/[^\x21\x23-\x24\x26-\x7e]+/g, (run) =>
    Array.from(
      Buffer.from(run, "utf8"),
      (byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`,
    ).join(""),
  );
}

function decodeHeaderValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    // Not valid percent-encoding: the sender did not encode; keep what it sent.
    return value;
  }
}

/** The `ce-` headers of an event: every attribute but the data, in the event's own order. */
export function binaryModeHeaders(event: CloudEvent): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(event)) {
    if (name === "data" || name === "data_base64" || value === undefined || value === null)
      continue;
    // Extensions are scalars in CloudEvents; anything else keeps its JSON text.
    const text = typeof value === "string" ? value : JSON.stringify(value);
    headers.push([`${PREFIX}${name}`, encodeHeaderValue(text)]);
  }
  return headers;
}

/** The message body as binary-mode data: JSON or text as `datacontenttype` says, else base64. */
function dataFromBody(
  body: Uint8Array,
  contentType: string | undefined,
): Pick<CloudEvent, "data" | "data_base64"> {
  if (body.length === 0) return {};
  const isJson = contentType === undefined || /[/+]json(;|$)/i.test(contentType);
  if (isJson) {
    const text = new TextDecoder().decode(body);
    try {
      return { data: JSON.parse(text) as JsonValue };
    } catch {
      return { data: text };
    }
  }
  if (/^text\//i.test(contentType)) return { data: new TextDecoder().decode(body) };
  return { data_base64: Buffer.from(body).toString("base64") };
}

/**
 * The event a binary-mode message carries, or undefined when its headers do not name one
 * (all of `ce-specversion: 1.0`, `ce-id`, `ce-source` and `ce-type` are needed).
 */
export function readBinaryModeEvent(
  headers: Iterable<[string, string]>,
  body: Uint8Array,
): CloudEvent | undefined {
  const attributes: Record<string, string> = {};
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower.startsWith(PREFIX) && lower.length > PREFIX.length)
      attributes[lower.slice(PREFIX.length)] = decodeHeaderValue(value);
  }
  const { specversion, id, source, type } = attributes;
  if (specversion !== "1.0" || !id || !source || !type) return undefined;
  return {
    ...attributes,
    specversion,
    id,
    source,
    type,
    ...dataFromBody(body, attributes.datacontenttype),
  };
}
