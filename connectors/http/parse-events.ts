/**
 * The events of one HTTP request, by the CloudEvents HTTP binding (http-protocol-binding.md):
 *
 * - structured mode, `Content-Type: application/cloudevents+json`: the body is one event;
 * - batched mode, `application/cloudevents-batch+json`: the body is a JSON array of events;
 * - binary mode, a `ce-specversion` header: attributes in `ce-*` headers (percent-encoded),
 *   `Content-Type` as datacontenttype, the body as data;
 * - anything else is a payload that is wrapped in an event ({@link wrapBody}).
 *
 * A small parser of our own rather than the `cloudevents` package's `HTTP.toEvent`: that one
 * adds a `time` to events that have none (a retried request would then carry a new time),
 * returns class instances with binary data as typed arrays, and knows nothing of wrapping; the
 * binding itself is a page of rules.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { CloudEvent } from "../../src/types.js";
import { assertCloudEvent } from "./check-cloud-event.js";
import { HttpRefusal } from "./http-refusal.js";
import { isJsonMediaType, mediaTypeOf, parseJson, wrapBody } from "./wrap-body.js";

export const STRUCTURED_TYPE = "application/cloudevents+json";
export const BATCH_TYPE = "application/cloudevents-batch+json";
const BINARY_PREFIX = "ce-";

/** A request's events, in order; refuses with a {@link HttpRefusal} naming what is wrong. */
export function parseEvents(
  body: Buffer,
  headers: IncomingHttpHeaders,
  options: { path: string; receivedAtMs: number },
): CloudEvent[] {
  const type = mediaTypeOf(headers["content-type"]);
  if (type === STRUCTURED_TYPE) {
    const event = parseJson(body, "the structured-mode body");
    assertCloudEvent(event, "body");
    return [event];
  }
  if (type === BATCH_TYPE) {
    const events = parseJson(body, "the batch body");
    if (!Array.isArray(events))
      throw new HttpRefusal("ValidationError", "body: a CloudEvents batch must be a JSON array");
    events.forEach((event, i) => assertCloudEvent(event, `body[${i}]`));
    return events as unknown as CloudEvent[];
  }
  if (headers["ce-specversion"] !== undefined) return [binaryEvent(body, headers)];
  return [wrapBody(body, headers, options)];
}

/** The event of a binary-mode request. */
function binaryEvent(body: Buffer, headers: IncomingHttpHeaders): CloudEvent {
  const event: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(BINARY_PREFIX) || value === undefined) continue;
    const attribute = name.slice(BINARY_PREFIX.length);
    event[attribute] = percentDecode(Array.isArray(value) ? value.join(",") : value, name);
  }
  const contentType = headers["content-type"];
  if (contentType !== undefined) event["datacontenttype"] = contentType;
  if (body.length > 0) {
    const type = mediaTypeOf(contentType);
    if (type === undefined || isJsonMediaType(type))
      event["data"] = parseJson(body, "the binary-mode body");
    else if (type.startsWith("text/")) event["data"] = body.toString("utf8");
    else event["data_base64"] = body.toString("base64");
  }
  assertCloudEvent(event, "ce- headers");
  return event;
}

/** Header values are percent-encoded UTF-8 where they hold more than printable ASCII. */
function percentDecode(value: string, header: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    throw new HttpRefusal("ValidationError", `${header}: not valid percent-encoded UTF-8`);
  }
}
