/**
 * The most recent committed events of each bus, kept in memory. The dispatcher reads right
 * behind the writer; serving those reads from here spares reading every event back from
 * SQLite and parsing its JSON again (about a tenth of the main thread under load). Reads
 * this tail does not cover fall through to SQLite.
 *
 * Invariant: each bus's tail holds contiguous offsets in ascending order.
 */
import type { StoredEvent } from "../../types.js";

/** In-memory tails of the log, per bus. */
export interface RecentEvents {
  /** Adds a just-committed event (commits are reported in offset order per bus). */
  add(stored: StoredEvent): void;
  /**
   * Events of `bus` after `afterOffset`, at most `limit`, when the tail covers that
   * position; undefined when the caller must read from SQLite instead.
   */
  read(bus: string, afterOffset: number, limit: number): StoredEvent[] | undefined;
  /** Forgets every tail (after retention deleted events, say). */
  clear(): void;
}

/** Keeps at most about `maxPerBus` events per bus (trimmed in chunks, so adding stays O(1) amortized). */
export function createRecentEvents(maxPerBus: number): RecentEvents {
  const tails = new Map<string, StoredEvent[]>();
  return {
    add(stored) {
      const tail = tails.get(stored.bus);
      const last = tail?.[tail.length - 1];
      if (tail === undefined || last === undefined || stored.offset !== last.offset + 1) {
        tails.set(stored.bus, [stored]);
        return;
      }
      tail.push(stored);
      if (tail.length >= 2 * maxPerBus) tail.splice(0, tail.length - maxPerBus);
    },
    read(bus, afterOffset, limit) {
      const tail = tails.get(bus);
      const first = tail?.[0];
      if (tail === undefined || first === undefined || afterOffset + 1 < first.offset) return undefined;
      const start = afterOffset + 1 - first.offset;
      // Past the tail's end: the reader may see a commit not yet reported; its report will
      // add it here and wake the reader, so nothing is missed by answering "nothing yet".
      if (start >= tail.length) return [];
      return tail.slice(start, start + limit);
    },
    clear() {
      tails.clear();
    },
  };
}
