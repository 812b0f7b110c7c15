/**
 * UUIDv7 (RFC 9562 section 5.7): a 48-bit Unix millisecond timestamp, then version 7, then
 * 74 random bits. Ingest gives PutEvents entries these ids so that the log's `(bus, event_id)`
 * index grows at its right edge: with random v4 ids every insert dirtied a random index page,
 * and raw appends fell from 50k to 20k rows/s on the target disk.
 *
 * Built on `crypto.randomUUID()` (which draws from a cached entropy pool, so it is cheap):
 * its first 48 bits become the timestamp and its version nibble a 7; the variant and the other
 * 74 random bits stay. Ids of the same millisecond are not ordered among themselves (the RFC
 * allows that); they land on the same few index pages, which is what the index needs.
 */
import { randomUUID } from "node:crypto";

// The timestamp part changes once per millisecond; formatting it per id cost ~0.3 µs.
let cachedMs = Number.NaN;
let cachedPrefix = "";

/**
 * A new UUIDv7 string, lowercase, e.g. `0191d4c2-7a3e-7b1c-9f0e-3c2d1a0b9e8f`.
 *
 * @param nowMs The timestamp to embed, Unix ms (default `Date.now()`); from 0 to 2^48 - 1.
 */
export function uuidV7(nowMs: number = Date.now()): string {
  if (nowMs !== cachedMs) {
    const time = Math.floor(nowMs).toString(16).padStart(12, "0");
    cachedMs = nowMs;
    cachedPrefix = `${time.slice(0, 8)}-${time.slice(8, 12)}-7`;
  }
  // randomUUID(): xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx; keep from the char after the "4".
  return cachedPrefix + randomUUID().slice(15);
}
