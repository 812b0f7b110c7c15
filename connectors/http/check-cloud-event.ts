/**
 * The checks a CloudEvent must pass to enter through the HTTP source: the required attributes,
 * the types of the optional ones, extension names and values (CloudEvents 1.0, spec.md). The
 * event passes through as sent, not rewritten: no attribute is added, dropped or reordered.
 * A sink that is a Relaybus bus checks it again in full, as ingress does.
 */
import type { CloudEvent } from "../../src/types.js";
import { HttpRefusal } from "./http-refusal.js";

const STRING_ATTRIBUTES = ["subject", "time", "datacontenttype", "dataschema"] as const;
const KNOWN_ATTRIBUTES: ReadonlySet<string> = new Set([
  "specversion",
  "id",
  "source",
  "type",
  ...STRING_ATTRIBUTES,
  "data",
  "data_base64",
]);
/** CloudEvents attribute names: lower-case letters and digits, at most 20 recommended, enforced. */
const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/;
/** RFC 3339 date-time, as the spec requires for `time`. */
const RFC_3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Whether `value` claims to be a CloudEvent (then it must pass {@link assertCloudEvent}). */
export function looksLikeCloudEvent(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === "object" && value !== null && !Array.isArray(value) && "specversion" in value
  );
}

/**
 * Asserts that `value` is a CloudEvent in its JSON form.
 *
 * @param where Names the event in messages (`body`, `body[2]`).
 * @throws HttpRefusal `ValidationError` naming the first attribute that is wrong.
 */
export function assertCloudEvent(value: unknown, where: string): asserts value is CloudEvent {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpRefusal("ValidationError", `${where}: a CloudEvent must be a JSON object`);
  }
  const event = value as Record<string, unknown>;
  if (event["specversion"] !== "1.0") {
    throw new HttpRefusal(
      "ValidationError",
      `${where}.specversion: must be "1.0", got ${JSON.stringify(event["specversion"])}`,
    );
  }
  for (const name of ["id", "source", "type"]) {
    const attribute = event[name];
    if (typeof attribute !== "string" || attribute === "") {
      throw new HttpRefusal("ValidationError", `${where}.${name}: required, a non-empty string`);
    }
  }
  for (const name of STRING_ATTRIBUTES) {
    const attribute = event[name];
    if (attribute !== undefined && attribute !== null && typeof attribute !== "string") {
      throw new HttpRefusal("ValidationError", `${where}.${name}: must be a string`);
    }
  }
  const time = event["time"];
  if (typeof time === "string" && !RFC_3339.test(time)) {
    throw new HttpRefusal(
      "ValidationError",
      `${where}.time: must be an RFC 3339 timestamp like 2024-05-01T12:00:00Z`,
    );
  }
  if (event["data"] !== undefined && event["data_base64"] !== undefined) {
    throw new HttpRefusal(
      "ValidationError",
      `${where}: data and data_base64 are mutually exclusive; send one`,
    );
  }
  const base64 = event["data_base64"];
  if (base64 !== undefined && base64 !== null && typeof base64 !== "string") {
    throw new HttpRefusal("ValidationError", `${where}.data_base64: must be a base64 string`);
  }
  for (const [name, attribute] of Object.entries(event)) {
    if (KNOWN_ATTRIBUTES.has(name)) continue;
    if (!ATTRIBUTE_NAME.test(name)) {
      throw new HttpRefusal(
        "ValidationError",
        `${where}.${name}: attribute names are 1 to 20 lower-case letters a-z or digits`,
      );
    }
    // Relaybus carries a PutEvents entry's Resources as an array of strings, as patterns want it.
    if (
      name === "resources" &&
      Array.isArray(attribute) &&
      attribute.every((r) => typeof r === "string")
    )
      continue;
    const type = typeof attribute;
    if (
      attribute !== null &&
      type !== "string" &&
      type !== "boolean" &&
      !Number.isInteger(attribute)
    ) {
      throw new HttpRefusal(
        "ValidationError",
        `${where}.${name}: an extension is a string, an integer or a boolean`,
      );
    }
  }
}
