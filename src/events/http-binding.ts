/**
 * The CloudEvents HTTP protocol binding (bindings/http-protocol-binding.md), receiving side:
 * raw Node headers and a body Buffer in, canonical CloudEvents out. The mode comes from the
 * `Content-Type` (section 3): `application/cloudevents-batch…` is batched mode,
 * `application/cloudevents…` structured mode, anything else binary mode.
 */
import type { IncomingHttpHeaders } from "node:http";
import { RelaybusError, isRelaybusError } from "../errors.js";
import type { CloudEvent } from "../types.js";
import { describeValue, isJsonMediaType, isMediaType, mediaTypeEssence } from "./attribute-types.js";
import { parseCloudEvent, parseCloudEventAttributes } from "./cloud-event.js";
import { parseJsonBody } from "./json-body.js";

/** Media type of one event in the JSON format (structured mode). */
export const STRUCTURED_MEDIA_TYPE = "application/cloudevents+json";
/** Media type of a JSON batch of events (batched mode). */
export const BATCH_MEDIA_TYPE = "application/cloudevents-batch+json";

const HEADER_PREFIX = "ce-";

/** The limits the binding enforces (a subset of `RelaybusConfig["limits"]`). */
export interface CloudEventsRequestLimits {
  /** Deepest JSON nesting of a body. */
  maxJsonDepth: number;
  /** Most events in a batch. */
  maxEntriesPerRequest: number;
}

/** One event of a batch: the canonical event, or why it was rejected. */
export type BatchItem = { event: CloudEvent } | { error: RelaybusError };

/** A parsed CloudEvents request: one event (binary or structured mode) or a batch. */
export type ParsedCloudEventsRequest =
  | { mode: "binary" | "structured"; event: CloudEvent }
  | { mode: "batch"; items: BatchItem[] };

/** Header values must be printable ASCII (RFC 9110); raw spaces are tolerated, as older senders used them. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** The `charset` parameter of a media type. */
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;
/** Content types whose body is kept as text: `text/*`, and XML (`* /xml`, `* /*+xml`). */
const TEXT_ESSENCE = /^text\/|\/xml$|\+xml$/;

/** Strict UTF-8 (overlong forms and lone surrogates rejected), created once. */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses a CloudEvents HTTP request.
 *
 * Binary mode: `ce-*` headers are the attributes, each unquoted and percent-decoded once
 * (section 3.1.3.2); `content-type` is `datacontenttype`; a JSON media type's body becomes
 * JSON `data`, a UTF-8 text type's a string, anything else `data_base64`.
 * Structured mode: the body is one event in the JSON format.
 * Batched mode: the body is a JSON array of events, each checked on its own.
 *
 * @throws RelaybusError `UnsupportedMediaType` for a CloudEvents media type other than the
 *   JSON ones, or a charset other than UTF-8; `InvalidJson`, `JsonTooDeep`; `TooManyEntries`
 *   for a batch past the limit; `ValidationError` naming the header or attribute.
 */
export function parseCloudEventsRequest(
  headers: IncomingHttpHeaders,
  body: Buffer,
  limits: CloudEventsRequestLimits,
): ParsedCloudEventsRequest {
  const contentType = headers["content-type"];
  const essence = contentType === undefined ? "" : mediaTypeEssence(contentType);
  if (essence.startsWith("application/cloudevents-batch")) {
    assertJsonFormat(contentType, essence, BATCH_MEDIA_TYPE);
    return { mode: "batch", items: parseBatch(parseJsonBody(body, limits), limits) };
  }
  if (essence.startsWith("application/cloudevents")) {
    assertJsonFormat(contentType, essence, STRUCTURED_MEDIA_TYPE);
    return { mode: "structured", event: parseCloudEvent(parseJsonBody(body, limits), "event") };
  }
  return { mode: "binary", event: parseBinary(headers, contentType, body, limits) };
}

/** Structured and batched mode take only the JSON format, in UTF-8. */
function assertJsonFormat(contentType: string | undefined, essence: string, expected: string): void {
  if (essence !== expected) {
    throw new RelaybusError(
      "UnsupportedMediaType",
      `content-type: ${describeValue(contentType)} is not supported; send ${expected}`,
    );
  }
  const charset = charsetOf(contentType ?? "");
  if (charset !== undefined && charset !== "utf-8") {
    throw new RelaybusError("UnsupportedMediaType", `content-type: charset ${describeValue(charset)} is not supported; send UTF-8`);
  }
}

function parseBatch(value: unknown, limits: CloudEventsRequestLimits): BatchItem[] {
  if (!Array.isArray(value)) {
    throw new RelaybusError("ValidationError", `body: a batch must be a JSON array of events, got ${describeValue(value)}`);
  }
  if (value.length > limits.maxEntriesPerRequest) {
    throw new RelaybusError(
      "TooManyEntries",
      `body: ${value.length} events, more than the limit of ${limits.maxEntriesPerRequest} per request`,
      { details: { count: value.length, maxEntriesPerRequest: limits.maxEntriesPerRequest } },
    );
  }
  const items: BatchItem[] = new Array(value.length);
  for (let i = 0; i < value.length; i++) {
    try {
      items[i] = { event: parseCloudEvent(value[i], `events[${i}]`) };
    } catch (error) {
      if (!isRelaybusError(error)) throw error;
      items[i] = { error };
    }
  }
  return items;
}

/** Error labels of binary mode: attributes are headers, except the two that are not. */
function binaryLabel(attribute: string): string {
  if (attribute === "datacontenttype") return "content-type";
  if (attribute === "data" || attribute === "data_base64") return "body";
  return HEADER_PREFIX + attribute;
}

function parseBinary(
  headers: IncomingHttpHeaders,
  contentType: string | undefined,
  body: Buffer,
  limits: CloudEventsRequestLimits,
): CloudEvent {
  // No prototype: a `ce-__proto__` header becomes an own key, rejected by the name check.
  const attributes: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let sawHeader = false;
  // Node lower-cases header names, so `CE-Id` arrives as `ce-id`.
  for (const name in headers) {
    if (!name.startsWith(HEADER_PREFIX)) continue;
    sawHeader = true;
    const attribute = name.slice(HEADER_PREFIX.length);
    if (attribute === "datacontenttype") {
      throw invalid(name, "must not be sent in binary mode; the content-type header carries datacontenttype");
    }
    if (attribute === "data" || attribute === "data_base64") {
      throw invalid(name, "binary mode carries data in the body, not in a header");
    }
    const raw = headers[name];
    if (raw === undefined) continue;
    attributes[attribute] = decodeHeaderValue(Array.isArray(raw) ? raw.join(",") : raw, name);
  }
  if (!sawHeader) {
    throw invalid(
      "ce-specversion",
      "required; binary mode needs ce-specversion, ce-id, ce-source and ce-type headers " +
        `(or send one event as ${STRUCTURED_MEDIA_TYPE})`,
    );
  }

  if (contentType !== undefined) {
    if (!isMediaType(contentType)) {
      throw invalid("content-type", `must be a media type like application/json, got ${describeValue(contentType)}`);
    }
    attributes["datacontenttype"] = contentType;
  }
  if (body.length > 0) {
    if (contentType === undefined) {
      // RFC 9110 8.3: without a content type the body is opaque bytes.
      attributes["data_base64"] = body.toString("base64");
    } else {
      readBinaryData(contentType, body, limits, attributes);
    }
  }
  return parseCloudEventAttributes(attributes, binaryLabel);
}

/** Sets `data` or `data_base64` from a binary-mode body, by its content type. */
function readBinaryData(
  contentType: string,
  body: Buffer,
  limits: CloudEventsRequestLimits,
  attributes: Record<string, unknown>,
): void {
  const charset = charsetOf(contentType);
  const utf8 = charset === undefined || charset === "utf-8" || charset === "us-ascii";
  if (utf8 && isJsonMediaType(contentType)) {
    try {
      attributes["data"] = parseJsonBody(body, limits);
    } catch (error) {
      if (!isRelaybusError(error)) throw error;
      throw new RelaybusError(error.code, `body: ${error.message}`, { details: error.details, cause: error });
    }
    return;
  }
  if (utf8 && TEXT_ESSENCE.test(mediaTypeEssence(contentType))) {
    try {
      attributes["data"] = UTF8.decode(body);
      return;
    } catch {
      // Not UTF-8 after all: keep the bytes exactly, as binary data.
    }
  }
  attributes["data_base64"] = body.toString("base64");
}

/** Lower-cased `charset` parameter, or undefined. */
function charsetOf(contentType: string): string | undefined {
  const match = CHARSET.exec(contentType);
  return match?.[1]?.toLowerCase();
}

/**
 * Decodes a `ce-` header value (binding section 3.1.3.2): a double-quoted string is unquoted
 * first (backslash escapes included), then one round of percent-decoding. Decoded bytes must
 * be valid UTF-8 (`%C0%A0`, an overlong space, is rejected). Plain values, almost all of
 * them, return without allocating.
 */
export function decodeHeaderValue(value: string, header: string): string {
  let text = value;
  if (text.length >= 2 && text.charCodeAt(0) === 0x22 && text.charCodeAt(text.length - 1) === 0x22) {
    text = unquote(text);
  }
  if (!PRINTABLE_ASCII.test(text)) {
    throw invalid(header, "must be printable ASCII; percent-encode other characters as UTF-8 (%E2%82%AC)");
  }
  if (!text.includes("%")) return text;
  const bytes = Buffer.allocUnsafe(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x25) {
      bytes[length++] = c;
      continue;
    }
    const high = hexValue(text.charCodeAt(i + 1));
    const low = hexValue(text.charCodeAt(i + 2));
    if (high < 0 || low < 0) {
      throw invalid(header, `malformed percent-encoding at character ${i}: % must be followed by two hex digits`);
    }
    bytes[length++] = high * 16 + low;
    i += 2;
  }
  try {
    return UTF8.decode(bytes.subarray(0, length));
  } catch {
    throw invalid(header, "percent-encoded bytes are not valid UTF-8");
  }
}

/** RFC 9110 quoted-string: drop the quotes, and `\x` stands for `x`. */
function unquote(quoted: string): string {
  let out = "";
  for (let i = 1; i < quoted.length - 1; i++) {
    const c = quoted[i];
    if (c === "\\" && i + 1 < quoted.length - 1) {
      out += quoted[++i];
    } else {
      out += c;
    }
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function invalid(label: string, message: string): RelaybusError {
  return new RelaybusError("ValidationError", `${label}: ${message}`, { details: { field: label } });
}
