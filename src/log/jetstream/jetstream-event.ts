/** An event as JetStream holds it: the structured JSON as the body, its receive time in a header. */
import type { MsgHdrs } from "nats";
import type { CloudEvent, StoredEvent } from "../../types.js";

/** The header holding when the node appended the event, ms since the epoch. */
export const RECEIVED_AT_HEADER = "Relaybus-Received-Ms";

/** The stored event a message of a bus's stream holds. */
export function storedEventOf(
  bus: string,
  seq: number,
  data: Uint8Array,
  headers: MsgHdrs | undefined,
  streamTimeMs: number,
): StoredEvent {
  const json = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
  const sizeBytes = data.byteLength;
  const stamped = Number(headers?.get(RECEIVED_AT_HEADER));
  return {
    bus,
    event: JSON.parse(json) as CloudEvent,
    json,
    sizeBytes,
    units: Math.max(1, Math.ceil(sizeBytes / 65_536)),
    offset: seq,
    receivedAtMs: Number.isFinite(stamped) && stamped > 0 ? stamped : streamTimeMs,
  };
}
