/**
 * Event size and billable units (DESIGN section 3). An event's size is the UTF-8 byte length
 * of its structured JSON form, and that same JSON text is what the log stores, so it is
 * produced exactly once per event, here.
 */
import type { CloudEvent, EventToAppend } from "../types.js";

/** Bytes in one billable unit: 64 KB. */
export const UNIT_BYTES = 65_536;

/**
 * Billable 64 KB units of an event of `sizeBytes`: `ceil(sizeBytes / 65536)`, at least 1
 * (an empty event still costs one unit, as on AWS EventBridge).
 */
export function billableUnits(sizeBytes: number): number {
  return sizeBytes <= UNIT_BYTES ? 1 : Math.ceil(sizeBytes / UNIT_BYTES);
}

/**
 * Serializes `event` once to its structured JSON form and measures it.
 * The attribute order of `event` is the order of the stored JSON; the parsers build events
 * in the canonical order (context attributes, extensions, then data).
 *
 * @param dataJson The text of `event.data` exactly as `JSON.stringify` writes it, when the
 *   caller holds it (a PutEvents `Detail` checked by `isStringifyForm`), with `data` the
 *   event's last attribute: the other attributes are serialized and this text spliced in
 *   after them, which gives the same JSON without serializing `data` again.
 */
export function measureEvent(bus: string, event: CloudEvent, dataJson?: string): EventToAppend {
  const json =
    dataJson === undefined ? JSON.stringify(event) : stringifyWithDataText(event, dataJson);
  const sizeBytes = Buffer.byteLength(json, "utf8");
  return { bus, event, json, sizeBytes, units: billableUnits(sizeBytes) };
}

/** `JSON.stringify(event)` given `dataJson`, the JSON text of its last attribute, `data`. */
function stringifyWithDataText(event: CloudEvent, dataJson: string): string {
  const data = event.data;
  let head: string;
  // JSON.stringify leaves out a property whose value is undefined. Assigning undefined for a
  // moment, rather than deleting the property, keeps the event's shape (and its speed).
  event.data = undefined;
  try {
    head = JSON.stringify(event);
  } finally {
    event.data = data;
  }
  return head === "{}" ? `{"data":${dataJson}}` : `${head.slice(0, -1)},"data":${dataJson}}`;
}
