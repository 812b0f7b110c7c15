/**
 * Builds the HTTP request of one delivery: one stored event, formatted the way its target
 * asked (shared/DESIGN.md section 3). The request is built once, at dispatch, stored with the
 * delivery and sent as is on every attempt; only `webhook-timestamp` is refreshed per attempt,
 * and `webhook-signature` added then (delivery-engine.ts), since it signs the timestamp.
 */
import type { DeliveryRequest } from "../log/log-engine.js";
import { RelaybusError } from "../errors.js";
import type { CloudEvent, JsonValue, StoredEvent } from "../types.js";
import type { RoutedTarget } from "./router.js";
import { RELAYBUS_VERSION } from "../version.js";

/** The `user-agent` of every delivery request. */
export const USER_AGENT = `Relaybus/${RELAYBUS_VERSION}`;

/** The media type of CloudEvents structured mode (CloudEvents JSON format). */
export const CLOUDEVENTS_JSON = "application/cloudevents+json";

/** Settings of the formats; see {@link DEFAULT_FORMAT_OPTIONS}. */
export interface FormatOptions {
  /** `account` of the AWS envelope. Default `"000000000000"`: there is no AWS account. */
  awsAccount: string;
  /** `region` of the AWS envelope. Default `"local"`. */
  awsRegion: string;
  /**
   * Set when the request is a replay's (see src/delivery/replay-runner.ts, which also gives
   * the event the `replayname` extension): the request carries `relaybus-replay: <name>`
   * and the AWS envelope `"replay-name"`, as AWS marks replayed events. Absent otherwise.
   */
  replayName?: string;
}

/** The header that names the replay a request belongs to. */
export const REPLAY_HEADER = "relaybus-replay";

/** The defaults of {@link FormatOptions}. */
export const DEFAULT_FORMAT_OPTIONS: FormatOptions = { awsAccount: "000000000000", awsRegion: "local" };

/** What {@link formatRequest} needs for one delivery. */
export interface FormatInput {
  event: StoredEvent;
  target: RoutedTarget;
  /** The delivery id (a UUID): the `webhook-id` of every attempt. */
  deliveryId: string;
  /** Now, for `webhook-timestamp`. */
  nowMs: number;
  /** For `format: transform`: the transform's output, already evaluated (it is async). */
  transformed?: JsonValue;
}

/**
 * Builds the request of one delivery for its target's format:
 * - `cloudevents-structured`: the event's stored JSON, `content-type: application/cloudevents+json`;
 * - `cloudevents-binary`: a `ce-` header per attribute (percent-encoded), the data as body
 *   with `content-type` from `datacontenttype`;
 * - `aws`: the EventBridge envelope, `content-type: application/json`;
 * - `data`: the bare data, as in binary mode but without `ce-` headers;
 * - `transform`: `input.transformed` as JSON.
 *
 * Every request carries `webhook-id`, `webhook-timestamp` (seconds) and `user-agent`, plus
 * the target's headers. The protocol headers win over the target's own of the same name,
 * so that a target cannot break the idempotency key or the content type. A target's own
 * `webhook-signature` is dropped: that header is only ever the one the engine computes.
 *
 * Throws `RelaybusError("ValidationError")` when the event cannot be carried in that format
 * (binary data that is not UTF-8, see {@link dataBody}; a transform with no output). The
 * dispatcher dead-letters the delivery with the message.
 */
export function formatRequest(input: FormatInput, options: FormatOptions = DEFAULT_FORMAT_OPTIONS): DeliveryRequest {
  const { event: stored, target } = input;
  const headers: Record<string, string> = {};
  for (const name in target.headers) {
    const value = target.headers[name];
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  let body: string;
  switch (target.format) {
    case "cloudevents-structured":
      // The stored JSON is the structured form already: no second serialisation per delivery.
      body = stored.json;
      headers["content-type"] = CLOUDEVENTS_JSON;
      break;
    case "cloudevents-binary": {
      addBinaryHeaders(stored.event, headers);
      const data = dataBody(stored.event);
      body = data.body;
      if (data.contentType !== undefined) headers["content-type"] = data.contentType;
      break;
    }
    case "data": {
      const data = dataBody(stored.event);
      body = data.body;
      if (data.contentType !== undefined) headers["content-type"] = data.contentType;
      break;
    }
    case "aws":
      body = JSON.stringify(awsEnvelope(stored, options));
      headers["content-type"] = "application/json";
      break;
    case "transform":
      if (input.transformed === undefined) {
        throw new RelaybusError("ValidationError", `target ${target.targetId}: transform produced no value`);
      }
      body = JSON.stringify(input.transformed);
      headers["content-type"] = "application/json";
      break;
    default:
      throw new RelaybusError("ValidationError", `target ${target.targetId}: unknown format ${String(target.format)}`);
  }
  delete headers["webhook-signature"];
  headers["webhook-id"] = input.deliveryId;
  headers["webhook-timestamp"] = webhookTimestamp(input.nowMs);
  headers["user-agent"] = USER_AGENT;
  if (options.replayName !== undefined) headers[REPLAY_HEADER] = options.replayName;
  return { url: target.url, headers, body, timeoutMs: target.timeoutMs };
}

/** `webhook-timestamp`: whole seconds since the epoch (Standard Webhooks). */
export function webhookTimestamp(nowMs: number): string {
  return String(Math.floor(nowMs / 1000));
}

/**
 * The structured form as a delivery request, for dead letters whose own request could not be
 * built (a failed transform): the payload kept is then the event itself.
 */
export function structuredFallbackRequest(input: Omit<FormatInput, "transformed">): DeliveryRequest {
  return formatRequest({ ...input, target: { ...input.target, format: "cloudevents-structured" } });
}

/** The AWS EventBridge envelope of an event (what an EventBridge target receives). */
export interface AwsEnvelope {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: JsonValue;
  /** The replay that sent it, on replayed events only (as AWS does). */
  "replay-name"?: string;
}

/**
 * Maps the CloudEvent back to the EventBridge shape (the reverse of ingress's PutEvents
 * mapping). `detail` is the data; binary data, which EventBridge cannot carry, travels as
 * `{"data_base64": ...}` rather than being dropped.
 */
export function awsEnvelope(stored: StoredEvent, options: FormatOptions = DEFAULT_FORMAT_OPTIONS): AwsEnvelope {
  const event = stored.event;
  let detail: JsonValue;
  if (event.data !== undefined) detail = event.data;
  else if (event.data_base64 !== undefined) detail = { data_base64: event.data_base64 };
  else detail = {};
  return {
    version: "0",
    id: event.id,
    "detail-type": event.type,
    source: event.source,
    account: options.awsAccount,
    time: event.time ?? new Date(stored.receivedAtMs).toISOString(),
    region: options.awsRegion,
    resources: resourcesOf(event),
    detail,
    ...(options.replayName === undefined ? {} : { "replay-name": options.replayName }),
  };
}

function resourcesOf(event: CloudEvent): string[] {
  const resources = event["resources"];
  if (Array.isArray(resources)) return resources.map((r) => (typeof r === "string" ? r : JSON.stringify(r)));
  if (typeof resources === "string") return resources === "" ? [] : resources.split(",");
  return [];
}

/** Attributes that are not `ce-` headers in binary mode. */
const NOT_HEADERS = new Set(["data", "data_base64", "datacontenttype"]);

/**
 * The `ce-` headers of binary mode: one per attribute present, extensions included, values
 * as their canonical strings. An array (the `resources` extension, kept as an array for
 * matching) is joined with commas, since a CloudEvents attribute is a scalar.
 */
function addBinaryHeaders(event: CloudEvent, headers: Record<string, string>): void {
  for (const name in event) {
    if (NOT_HEADERS.has(name)) continue;
    const value = event[name];
    if (value === undefined || value === null) continue;
    headers[`ce-${name.toLowerCase()}`] = percentEncodeHeaderValue(attributeString(value));
  }
}

function attributeString(value: JsonValue): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(",");
  return JSON.stringify(value);
}

const HEX = "0123456789ABCDEF";

/**
 * Percent-encodes a header value as the CloudEvents HTTP binding (3.1.3.2) requires: the
 * UTF-8 bytes of space, `"`, `%` and anything outside printable ASCII become `%XX`.
 * A fast path returns plain ASCII values untouched, as almost all are.
 */
export function percentEncodeHeaderValue(value: string): string {
  let plain = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return value;
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    if (byte <= 0x20 || byte >= 0x7f || byte === 0x22 || byte === 0x25) {
      out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
    } else {
      out += String.fromCharCode(byte);
    }
  }
  return out;
}

/** True for JSON media types: `application/json`, `text/json`, and any `+json` suffix. */
export function isJsonContentType(contentType: string): boolean {
  const base = contentType.split(";", 1)[0]!.trim().toLowerCase();
  return base === "application/json" || base === "text/json" || base.endsWith("+json");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The event's data as an HTTP body, with its content type: JSON data serialised (the
 * CloudEvents default when `datacontenttype` is absent), text data as is, `data_base64`
 * decoded. No data gives an empty body.
 *
 * Trade-off: `DeliveryRequest.body` is a string (so it stores as text and is signed as
 * text), which carries decoded binary data only when it is valid UTF-8. Other bytes throw
 * `ValidationError` and the delivery is dead-lettered with the reason, rather than sent
 * corrupted; a structured-mode target receives such events intact.
 */
export function dataBody(event: CloudEvent): { body: string; contentType?: string } {
  const declared = event.datacontenttype;
  if (event.data_base64 !== undefined) {
    const bytes = Buffer.from(event.data_base64, "base64");
    let body: string;
    try {
      body = utf8.decode(bytes);
    } catch {
      throw new RelaybusError(
        "ValidationError",
        "data_base64 is not UTF-8 text, which a delivery body cannot carry yet; use format cloudevents-structured",
      );
    }
    return { body, contentType: declared ?? "application/octet-stream" };
  }
  if (event.data === undefined) return declared === undefined ? { body: "" } : { body: "", contentType: declared };
  if (declared === undefined) return { body: JSON.stringify(event.data), contentType: "application/json" };
  if (isJsonContentType(declared) || typeof event.data !== "string") {
    return { body: JSON.stringify(event.data), contentType: declared };
  }
  return { body: event.data, contentType: declared };
}
