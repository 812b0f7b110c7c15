/**
 * Reads the replies of the stream commands the redis source sends (through `call`, which
 * gives them untyped), checking their shape instead of trusting a cast.
 */
import type { StreamEntry } from "./entry-to-event.js";

/** What one XREADGROUP or XAUTOCLAIM gave: entries, and ids whose entries were deleted. */
export interface ReadResult {
  entries: StreamEntry[];
  /** Pending ids whose entries were trimmed or XDELed: nothing to hand over, only to acknowledge. */
  deletedIds: string[];
  /** The highest id in the reply, entry or deleted; undefined when the reply was empty. */
  lastId?: string;
}

/** XREADGROUP on one key: `null`, or `[[key, [[id, fields | null], ...]]]`. */
export function parseReadGroupReply(reply: unknown): ReadResult {
  const result: ReadResult = { entries: [], deletedIds: [] };
  if (reply === null) return result;
  const perKey = asArray(reply, "XREADGROUP reply")[0];
  if (perKey === undefined) return result;
  addEntries(result, asArray(asArray(perKey, "XREADGROUP stream")[1], "XREADGROUP entries"));
  return result;
}

/** XAUTOCLAIM: `[nextCursor, [[id, fields], ...], [deletedId, ...]]` (the last since Redis 7). */
export function parseAutoClaimReply(reply: unknown): ReadResult & { cursor: string } {
  // The third element lists deleted ids, which XAUTOCLAIM already took off the pending list.
  const [cursor, entries] = asArray(reply, "XAUTOCLAIM reply");
  const result = { cursor: asString(cursor, "XAUTOCLAIM cursor"), entries: [], deletedIds: [] };
  addEntries(result, asArray(entries, "XAUTOCLAIM entries"));
  return result;
}

function addEntries(result: ReadResult, entries: unknown[]): void {
  for (const raw of entries) {
    const [id, fields] = asArray(raw, "stream entry");
    const entryId = asString(id, "stream entry id");
    result.lastId = entryId;
    if (fields === null) result.deletedIds.push(entryId);
    else
      result.entries.push({
        id: entryId,
        fields: asArray(fields, "stream entry fields").map((f) => asString(f, "field")),
      });
  }
}

/**
 * How many entries of `group` wait: those never delivered (`lag`) plus those delivered and not
 * acknowledged (`pending`). Undefined when the group is missing or Redis cannot tell the lag
 * (it answers nil after entries were deleted from the middle of the stream).
 */
export function parseGroupBacklog(reply: unknown, group: string): number | undefined {
  for (const raw of asArray(reply, "XINFO GROUPS reply")) {
    const info = asArray(raw, "XINFO GROUPS group");
    // Names and values alternate: a name sits at an even index.
    const field = (name: string) => {
      const at = info.indexOf(name);
      return at >= 0 && at % 2 === 0 ? info[at + 1] : undefined;
    };
    if (field("name") !== group) continue;
    const lag = field("lag");
    const pending = field("pending");
    return typeof lag === "number" && typeof pending === "number" ? lag + pending : undefined;
  }
  return undefined;
}

function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value))
    throw new Error(`unexpected ${what} from Redis: ${JSON.stringify(value)}`);
  return value;
}

function asString(value: unknown, what: string): string {
  if (typeof value !== "string")
    throw new Error(`unexpected ${what} from Redis: ${JSON.stringify(value)}`);
  return value;
}
