/**
 * How the HTTP source maps a request body that is not a CloudEvent: it wraps it in one.
 *
 * - id: the request's `ce-id`, `Idempotency-Key` or `Webhook-Id` header (the first present),
 *   else a new UUID. An HTTP request has no broker id: a producer that retries (as it should on
 *   a 503 or a dropped connection) and wants its retries recognised as one event must send one
 *   of those headers; without it each try is a new event.
 * - source `relaybus.http<path>` (e.g. `relaybus.http/events`), type `relaybus.http.message`,
 *   time: when the request arrived.
 * - A JSON body (no Content-Type, `application/json`, `*+json`) becomes `data`, with
 *   datacontenttype `application/json`; a body that is itself a CloudEvent passes through as
 *   is. A `text/*` body becomes `data` as a string, and any other type `data_base64`, each with
 *   the request's Content-Type as datacontenttype.
 */
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { CloudEvent, JsonValue } from "../../src/types.js";
import { assertCloudEvent, looksLikeCloudEvent } from "./check-cloud-event.js";
import { HttpRefusal } from "./http-refusal.js";

/** Request headers that carry a producer's id for the event, in order of preference. */
export const ID_HEADERS = ["ce-id", "idempotency-key", "webhook-id"] as const;

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  return type === "" ? undefined : type;
}

export function isJsonMediaType(type: string | undefined): boolean {
  return type === "application/json" || (type?.endsWith("+json") ?? false);
}

/** Parses a JSON body or refuses it as `InvalidJson`, naming where it came from. */
export function parseJson(body: Buffer, what: string): JsonValue {
  try {
    return JSON.parse(body.toString("utf8")) as JsonValue;
  } catch (error) {
    throw new HttpRefusal("InvalidJson", `${what} is not valid JSON: ${(error as Error).message}`);
  }
}

/** The one event of a body that is not a CloudEvents request. */
export function wrapBody(
  body: Buffer,
  headers: IncomingHttpHeaders,
  options: { path: string; receivedAtMs: number },
): CloudEvent {
  const contentType = headers["content-type"];
  const type = mediaTypeOf(contentType);
  let payload: Pick<CloudEvent, "datacontenttype" | "data" | "data_base64">;
  if (type === undefined || isJsonMediaType(type)) {
    const value = parseJson(body, "the body");
    if (looksLikeCloudEvent(value)) {
      assertCloudEvent(value, "body");
      return value;
    }
    payload = { datacontenttype: "application/json", data: value };
  } else if (type.startsWith("text/")) {
    payload = { datacontenttype: contentType as string, data: body.toString("utf8") };
  } else {
    payload = { datacontenttype: contentType as string, data_base64: body.toString("base64") };
  }
  return {
    specversion: "1.0",
    id: producerId(headers) ?? randomUUID(),
    source: `relaybus.http${options.path}`,
    type: "relaybus.http.message",
    time: new Date(options.receivedAtMs).toISOString(),
    ...payload,
  };
}

function producerId(headers: IncomingHttpHeaders): string | undefined {
  for (const name of ID_HEADERS) {
    const value = headers[name];
    const id = (Array.isArray(value) ? value[0] : value)?.trim();
    if (id !== undefined && id !== "") return id;
  }
  return undefined;
}
