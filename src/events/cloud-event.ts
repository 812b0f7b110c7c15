/**
 * Validation of a CloudEvents 1.0 event in its JSON form (spec.md, formats/json-format.md),
 * producing the canonical event Relaybus stores: attributes in a fixed order (context
 * attributes, extensions, then data), `null` attributes dropped (the JSON format says a null
 * attribute is unset), and `resources` always an array of strings.
 */
import { RelaybusError } from "../errors.js";
import type { CloudEvent, JsonValue } from "../types.js";
import {
  describeValue,
  isAbsoluteUri,
  isAttributeName,
  isBase64,
  isCloudEventsInteger,
  isCloudEventsString,
  isJsonMediaType,
  isMediaType,
  isRfc3339,
  isUriReference,
} from "./attribute-types.js";

/** The only `specversion` accepted. */
export const SPEC_VERSION = "1.0";

/**
 * The extension attribute that carries a PutEvents entry's `Resources`. Inside Relaybus it
 * is an array of strings (so patterns match it as AWS's do); where CloudEvents types force a
 * string (a `ce-resources` header), it is JSON array text or a comma-separated list.
 */
export const RESOURCES_ATTRIBUTE = "resources";

/** Attributes with a meaning of their own; every other name is an extension. */
const KNOWN_ATTRIBUTES: ReadonlySet<string> = new Set([
  "specversion",
  "id",
  "source",
  "type",
  "subject",
  "time",
  "datacontenttype",
  "dataschema",
  "data",
  "data_base64",
]);

/**
 * Validates `value` as a CloudEvent in the JSON format and returns the canonical event.
 *
 * @param where Prefix of error messages, naming where the event came from (`event`,
 *   `events[3]`): messages read `events[3].time: must be an RFC 3339 timestamp ...`.
 * @throws RelaybusError `ValidationError` naming the first attribute that is wrong.
 */
export function parseCloudEvent(value: unknown, where: string): CloudEvent {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RelaybusError("ValidationError", `${where}: must be a JSON object, got ${describeValue(value)}`);
  }
  return parseCloudEventAttributes(value as Record<string, unknown>, (name) => `${where}.${name}`);
}

/**
 * Validates an attribute map (JSON-format names and values) and returns the canonical event.
 * The HTTP binary mode uses this with its own labels (`ce-time`, `content-type`, `body`).
 *
 * @param labelOf Names an attribute in error messages; only called on the error path.
 * @throws RelaybusError `ValidationError` naming the first attribute that is wrong.
 */
export function parseCloudEventAttributes(
  attributes: Record<string, unknown>,
  labelOf: (attribute: string) => string,
): CloudEvent {
  const specversion = attributes["specversion"];
  if (specversion !== SPEC_VERSION) {
    throw invalid(
      labelOf("specversion"),
      specversion === undefined || specversion === null
        ? `required, must be "${SPEC_VERSION}"`
        : `must be "${SPEC_VERSION}", got ${describeValue(specversion)}`,
    );
  }
  const event: CloudEvent = {
    specversion: SPEC_VERSION,
    id: requiredString(attributes, "id", labelOf),
    source: requiredString(attributes, "source", labelOf),
    type: requiredString(attributes, "type", labelOf),
  };
  if (!isUriReference(event.source)) {
    throw invalid(labelOf("source"), `must be a URI reference (RFC 3986), got ${describeValue(event.source)}`);
  }

  const subject = optionalString(attributes, "subject", labelOf);
  if (subject !== undefined) event.subject = subject;

  const time = optionalString(attributes, "time", labelOf);
  if (time !== undefined) {
    if (!isRfc3339(time)) {
      throw invalid(labelOf("time"), `must be an RFC 3339 timestamp like 2024-05-01T12:00:00Z, got ${describeValue(time)}`);
    }
    event.time = time;
  }

  const datacontenttype = optionalString(attributes, "datacontenttype", labelOf);
  if (datacontenttype !== undefined) {
    if (!isMediaType(datacontenttype)) {
      throw invalid(
        labelOf("datacontenttype"),
        `must be a media type like application/json, got ${describeValue(datacontenttype)}`,
      );
    }
    event.datacontenttype = datacontenttype;
  }

  const dataschema = optionalString(attributes, "dataschema", labelOf);
  if (dataschema !== undefined) {
    if (!isAbsoluteUri(dataschema)) {
      throw invalid(labelOf("dataschema"), `must be an absolute URI, got ${describeValue(dataschema)}`);
    }
    event.dataschema = dataschema;
  }

  for (const name of Object.keys(attributes)) {
    if (KNOWN_ATTRIBUTES.has(name)) continue;
    const extension = parseExtension(name, attributes[name], labelOf);
    if (extension !== undefined) event[name] = extension;
  }

  copyData(attributes, event, labelOf);
  return event;
}

/** Validates one extension attribute; `undefined` means unset (a JSON `null`). */
function parseExtension(name: string, value: unknown, labelOf: (attribute: string) => string): JsonValue | undefined {
  if (!isAttributeName(name)) {
    throw invalid(labelOf(name), "attribute names must be 1 to 20 lower-case letters a-z or digits 0-9");
  }
  if (value === null || value === undefined) return undefined;
  if (name === RESOURCES_ATTRIBUTE) return parseResources(value, labelOf(name));
  switch (typeof value) {
    case "string":
      if (!isCloudEventsString(value)) throw invalid(labelOf(name), DISALLOWED_CHARS_MESSAGE);
      return value;
    case "boolean":
      return value;
    case "number":
      if (isCloudEventsInteger(value)) return value;
      throw invalid(labelOf(name), `an integer extension must be a whole number in the 32-bit range, got ${value}`);
    default:
      throw invalid(
        labelOf(name),
        `extension attributes must be a string, integer or boolean, got ${describeValue(value)}`,
      );
  }
}

/**
 * The `resources` attribute as an array of strings: an array is taken as is; a string (the
 * CloudEvents extension form) is JSON array text when it starts with `[`, else a
 * comma-separated list.
 */
export function parseResources(value: unknown, label: string): string[] {
  let list: unknown = value;
  if (typeof value === "string") {
    if (value.startsWith("[")) {
      try {
        list = JSON.parse(value);
      } catch {
        throw invalid(label, "starts with [ but is not JSON array text");
      }
    } else {
      list = value === "" ? [] : value.split(",").map((item) => item.trim());
    }
  }
  if (!Array.isArray(list)) {
    throw invalid(label, `must be an array of strings, got ${describeValue(value)}`);
  }
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i];
    if (typeof item !== "string" || item === "") {
      throw invalid(`${label}[${i}]`, `must be a non-empty string, got ${describeValue(item)}`);
    }
    if (!isCloudEventsString(item)) throw invalid(`${label}[${i}]`, DISALLOWED_CHARS_MESSAGE);
  }
  return list as string[];
}

/**
 * Copies `data` or `data_base64`, last so that they close the stored JSON. They are mutually
 * exclusive; `data_base64` must be base64; with a non-JSON `datacontenttype`, `data` must be
 * a string (the JSON format carries non-JSON content as text). `data: null` is an explicit
 * null payload and is kept.
 */
function copyData(attributes: Record<string, unknown>, event: CloudEvent, labelOf: (attribute: string) => string): void {
  const base64 = attributes["data_base64"];
  const hasData = Object.prototype.hasOwnProperty.call(attributes, "data") && attributes["data"] !== undefined;
  if (base64 !== undefined && base64 !== null) {
    if (hasData) {
      throw invalid(labelOf("data_base64"), "data and data_base64 are mutually exclusive; send one");
    }
    if (typeof base64 !== "string" || !isBase64(base64)) {
      throw invalid(labelOf("data_base64"), "must be a string of padded base64 (RFC 4648)");
    }
    event.data_base64 = base64;
    return;
  }
  if (!hasData) return;
  const data = attributes["data"] as JsonValue;
  if (
    data !== null &&
    typeof data !== "string" &&
    event.datacontenttype !== undefined &&
    !isJsonMediaType(event.datacontenttype)
  ) {
    throw invalid(
      labelOf("data"),
      `must be a string when datacontenttype ${describeValue(event.datacontenttype)} is not JSON; use data_base64 for binary data`,
    );
  }
  event.data = data;
}

const DISALLOWED_CHARS_MESSAGE = "must not contain control characters, unpaired surrogates or Unicode noncharacters";

function requiredString(
  attributes: Record<string, unknown>,
  name: string,
  labelOf: (attribute: string) => string,
): string {
  const value = attributes[name];
  if (value === undefined || value === null) throw invalid(labelOf(name), "required, a non-empty string");
  if (typeof value !== "string" || value === "") {
    throw invalid(labelOf(name), `must be a non-empty string, got ${describeValue(value)}`);
  }
  if (!isCloudEventsString(value)) throw invalid(labelOf(name), DISALLOWED_CHARS_MESSAGE);
  return value;
}

function optionalString(
  attributes: Record<string, unknown>,
  name: string,
  labelOf: (attribute: string) => string,
): string | undefined {
  const value = attributes[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value === "") {
    throw invalid(labelOf(name), `must be a non-empty string, got ${describeValue(value)}`);
  }
  if (!isCloudEventsString(value)) throw invalid(labelOf(name), DISALLOWED_CHARS_MESSAGE);
  return value;
}

function invalid(label: string, message: string): RelaybusError {
  return new RelaybusError("ValidationError", `${label}: ${message}`, { details: { field: label } });
}
