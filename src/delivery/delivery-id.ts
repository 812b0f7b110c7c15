/**
 * Delivery ids, derived from what the delivery is, not drawn at random.
 *
 * Why: the dispatcher can hand a batch over twice (a crash after dead-lettering a failed
 * transform but before the checkpoint commit, or a retried commit). With an id derived from
 * (bus, offset, event id, rule, target), the second hand-over produces the same ids and the
 * store skips them, so a receiver never sees two `webhook-id`s for one event and target.
 * The cost is one SHA-1 of a short string per delivery, under half a microsecond.
 */
import { hash } from "node:crypto";

/**
 * The id of the delivery of one event to one target: an RFC 9562 name-based UUID (version 5
 * layout, SHA-1) of `bus`, `offset`, `eventId`, `rule` and `targetId`. The event id is part
 * of the name so that a bus deleted and created again, whose offsets start over, does not
 * reuse the ids of its earlier life.
 */
export function deliveryId(bus: string, offset: number, eventId: string, rule: string, targetId: string): string {
  return nameBasedUuid(["relaybus-delivery", bus, offset, eventId, rule, targetId]);
}

/** An RFC 9562 version 5 layout UUID (SHA-1) of `parts`. */
function nameBasedUuid(parts: readonly (string | number)[]): string {
  // JSON quoting keeps the parts from running into each other ("a"+"bc" vs "ab"+"c"),
  // whatever characters an event id holds.
  // One-shot `hash` costs less than half of createHash().update().digest() here.
  const hex = hash("sha1", JSON.stringify(parts), "hex");
  const variant = ((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The id of a replay's delivery: a name-based UUID of the replay's name and `originalId`,
 * the id the dispatcher gives (or would give) that event and target. It differs from the
 * original, so a receiver that deduplicates on `webhook-id` does not drop the replay as a
 * repeat, and it is the same each time, so a replay resumed after a crash repeats its ids
 * (the store skips them) rather than sending new ones.
 */
export function replayDeliveryId(replayName: string, originalId: string): string {
  return nameBasedUuid(["relaybus-replay", replayName, originalId]);
}
