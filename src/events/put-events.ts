/**
 * The AWS `PutEvents` request mapped to CloudEvents (DESIGN section 3):
 * `Source → source`, `DetailType → type`, `Detail → data` (a JSON object, with
 * `datacontenttype: application/json`), `Time → time`, `Resources → resources`,
 * `TraceHeader → traceheader`, and `EventBusName` (a name or an event-bus ARN) picks the bus.
 * The service assigns `id` (a UUIDv7: time-ordered, so the log's id index stays cheap) and,
 * when `Time` is absent, `time` (now).
 */
import { RelaybusError, isRelaybusError } from "../errors.js";
import type { CloudEvent, JsonValue } from "../types.js";
import { describeValue, isCloudEventsString, isRfc3339, isUriReference } from "./attribute-types.js";
import { parseResources, RESOURCES_ATTRIBUTE, SPEC_VERSION } from "./cloud-event.js";
import { parseJsonBody, type JsonBodyLimits } from "./json-body.js";
import { isStringifyForm } from "./stringify-form.js";
import { uuidV7 } from "./uuid-v7.js";

/** The bus an entry without `EventBusName` goes to. */
export const DEFAULT_BUS = "default";

/** The extension attribute that carries an entry's `TraceHeader` (an X-Ray trace header). */
export const TRACE_HEADER_ATTRIBUTE = "traceheader";

/** `arn:<partition>:events:<region>:<account>:event-bus/<name>`; the partition may be `aws-cn` etc. */
const EVENT_BUS_ARN = /^arn:aws[a-z-]*:events:[^:]*:[^:]*:event-bus\/(.+)$/;

const ENTRY_FIELDS: ReadonlySet<string> = new Set([
  "Source",
  "DetailType",
  "Detail",
  "Time",
  "Resources",
  "EventBusName",
  "TraceHeader",
]);

/** One PutEvents entry as a CloudEvent and the name of its bus. */
export interface MappedEntry {
  bus: string;
  event: CloudEvent;
  /**
   * The entry's `Detail` text when it is exactly `JSON.stringify(event.data)` (most producers
   * send it so; see stringify-form.ts), for `measureEvent` to splice into the stored JSON.
   * Undefined when it is not, or might not be: then `data` is serialized again.
   */
  dataJson: string | undefined;
}

/** What mapping an entry needs from its request, computed once per request. */
export interface PutEventsContext {
  /** `time` of entries without `Time`: the request's arrival, ISO 8601 UTC. */
  nowIso: string;
  /** Depth limit of each `Detail` document. */
  maxJsonDepth: number;
  /** Most keys in one object of a `Detail` document. Absent: not checked. */
  maxJsonKeysPerObject?: number;
}

/**
 * Checks the request envelope and returns its entries, still unchecked.
 *
 * @throws RelaybusError `ValidationError` when the body is not an object with an `Entries`
 *   array of at least one entry; `TooManyEntries` past `maxEntriesPerRequest`.
 */
export function parsePutEventsRequest(body: JsonValue, limits: { maxEntriesPerRequest: number }): readonly unknown[] {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RelaybusError("ValidationError", `request body: must be a JSON object with Entries, got ${describeValue(body)}`);
  }
  const entries = body["Entries"];
  if (!Array.isArray(entries)) {
    throw new RelaybusError(
      "ValidationError",
      `Entries: required, an array of 1 to ${limits.maxEntriesPerRequest} entries, got ${describeValue(entries)}`,
    );
  }
  if (entries.length === 0) {
    throw new RelaybusError("ValidationError", `Entries: must hold at least 1 entry`);
  }
  if (entries.length > limits.maxEntriesPerRequest) {
    throw new RelaybusError(
      "TooManyEntries",
      `Entries: ${entries.length} entries, more than the limit of ${limits.maxEntriesPerRequest} per request`,
      { details: { count: entries.length, maxEntriesPerRequest: limits.maxEntriesPerRequest } },
    );
  }
  return entries;
}

/**
 * Maps one entry to a CloudEvent and its bus.
 *
 * @param index The entry's position, for messages like `Entries[3].Source: required`.
 * @throws RelaybusError `ValidationError` naming the field; `MalformedDetail` when `Detail`
 *   is not JSON text holding an object; `JsonTooDeep` when it nests past the limit.
 */
export function parsePutEventsEntry(entry: unknown, index: number, context: PutEventsContext): MappedEntry {
  const at = `Entries[${index}]`;
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw invalid(at, `must be an object, got ${describeValue(entry)}`);
  }
  const fields = entry as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!ENTRY_FIELDS.has(name)) {
      throw invalid(`${at}.${name}`, `unknown field; an entry has ${[...ENTRY_FIELDS].join(", ")}`);
    }
  }

  const source = requiredString(fields, "Source", at);
  if (!isUriReference(source)) {
    throw invalid(`${at}.Source`, `must be a URI reference such as com.example.orders, got ${describeValue(source)}`);
  }
  const event: CloudEvent = {
    specversion: SPEC_VERSION,
    id: uuidV7(),
    source,
    type: requiredString(fields, "DetailType", at),
    time: parseTime(fields["Time"], `${at}.Time`) ?? context.nowIso,
    datacontenttype: "application/json",
  };

  const resources = fields["Resources"];
  if (resources !== undefined && resources !== null) {
    if (!Array.isArray(resources)) {
      throw invalid(`${at}.Resources`, `must be an array of strings, got ${describeValue(resources)}`);
    }
    event[RESOURCES_ATTRIBUTE] = parseResources(resources, `${at}.Resources`);
  }
  const traceHeader = optionalString(fields, "TraceHeader", at);
  if (traceHeader !== undefined) event[TRACE_HEADER_ATTRIBUTE] = traceHeader;

  const detail = fields["Detail"];
  event.data = parseDetail(detail, `${at}.Detail`, context);
  // parseDetail accepted it, so it is a string of JSON text.
  const dataJson = isStringifyForm(detail as string) ? (detail as string) : undefined;
  return { bus: parseBusName(fields["EventBusName"], `${at}.EventBusName`), event, dataJson };
}

/**
 * The bus named by `EventBusName`: absent means `default`; an event-bus ARN gives the name
 * after `event-bus/`, so AWS code that passes ARNs works unchanged.
 */
export function parseBusName(value: unknown, label: string): string {
  if (value === undefined || value === null) return DEFAULT_BUS;
  if (typeof value !== "string" || value === "") {
    throw invalid(label, `must be a bus name or an event-bus ARN, got ${describeValue(value)}`);
  }
  if (!value.startsWith("arn:")) return value;
  const match = EVENT_BUS_ARN.exec(value);
  if (!match?.[1]) {
    throw invalid(label, `must be an ARN like arn:aws:events:region:account:event-bus/NAME, got ${describeValue(value)}`);
  }
  return match[1];
}

/**
 * `Time` as an RFC 3339 string: a string is checked and kept as sent; a number is epoch
 * seconds (what the AWS SDKs' JSON protocol sends, fractions allowed) and becomes ISO 8601 UTC.
 */
function parseTime(value: unknown, label: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number") {
    // Rounded to the millisecond: 1.005 * 1000 is 1004.9999999999999 in floating point.
    const date = Number.isFinite(value) ? new Date(Math.round(value * 1000)) : undefined;
    if (date === undefined || Number.isNaN(date.getTime()) || value < 0) {
      throw invalid(label, `must be epoch seconds from 0 on or an RFC 3339 timestamp, got ${value}`);
    }
    return date.toISOString();
  }
  if (typeof value !== "string" || !isRfc3339(value)) {
    throw invalid(label, `must be an RFC 3339 timestamp like 2024-05-01T12:00:00Z or epoch seconds, got ${describeValue(value)}`);
  }
  return value;
}

/** `Detail`: JSON text holding an object, as AWS requires; parsed once, with the depth limit. */
function parseDetail(value: unknown, label: string, limits: JsonBodyLimits): JsonValue {
  if (value === undefined || value === null) throw invalid(label, "required, a JSON object as a string");
  if (typeof value !== "string") {
    throw new RelaybusError(
      "MalformedDetail",
      `${label}: must be a string holding a JSON object, got ${describeValue(value)}`,
      { details: { field: label } },
    );
  }
  let detail: JsonValue;
  try {
    detail = parseJsonBody(value, limits);
  } catch (error) {
    if (isRelaybusError(error, "JsonTooDeep") || isRelaybusError(error, "JsonTooManyKeys")) {
      throw new RelaybusError(error.code, `${label}: ${error.message}`, { details: { field: label } });
    }
    const reason = isRelaybusError(error) ? error.message : String(error);
    throw new RelaybusError("MalformedDetail", `${label}: ${reason}`, { details: { field: label }, cause: error });
  }
  if (typeof detail !== "object" || detail === null || Array.isArray(detail)) {
    throw new RelaybusError("MalformedDetail", `${label}: must be a JSON object, got ${describeValue(detail)}`, {
      details: { field: label },
    });
  }
  return detail;
}

function requiredString(fields: Record<string, unknown>, name: string, at: string): string {
  const value = fields[name];
  if (value === undefined || value === null) throw invalid(`${at}.${name}`, "required");
  return checkedString(value, `${at}.${name}`);
}

function optionalString(fields: Record<string, unknown>, name: string, at: string): string | undefined {
  const value = fields[name];
  return value === undefined || value === null ? undefined : checkedString(value, `${at}.${name}`);
}

function checkedString(value: unknown, label: string): string {
  if (typeof value !== "string" || value === "") {
    throw invalid(label, `must be a non-empty string, got ${describeValue(value)}`);
  }
  if (!isCloudEventsString(value)) {
    throw invalid(label, "must not contain control characters, unpaired surrogates or Unicode noncharacters");
  }
  return value;
}

function invalid(label: string, message: string): RelaybusError {
  return new RelaybusError("ValidationError", `${label}: ${message}`, { details: { field: label } });
}
