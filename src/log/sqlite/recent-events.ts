/**
 * The most recent committed events of each bus, kept in memory. The dispatcher reads right
 * behind the writer; serving those reads from here spares reading every event back from
 * SQLite and parsing its JSON again (about a tenth of the main thread under load). Reads
 * this tail does not cover fall through to SQLite.
 *
 * Each bus's tail is a ring of exactly `maxPerBus` slots, so an event is let go as soon as
 * `maxPerBus` newer ones arrived. (A list trimmed in chunks kept up to twice as many: under
 * load those extra events and their parsed data were copied by every young-generation GC.)
 *
 * Invariant: each bus's tail holds contiguous offsets, `first` to `first + count - 1`.
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

interface Tail {
  slots: (StoredEvent | undefined)[];
  /** Offset of the oldest event held. */
  first: number;
  /** Events held, at most `slots.length`. */
  count: number;
}

/** Keeps the last `maxPerBus` events of each bus. */
export function createRecentEvents(maxPerBus: number): RecentEvents {
  const capacity = Math.max(1, Math.floor(maxPerBus));
  const tails = new Map<string, Tail>();
  return {
    add(stored) {
      let tail = tails.get(stored.bus);
      if (tail === undefined) {
        tail = {
          slots: new Array<StoredEvent | undefined>(capacity).fill(undefined),
          first: stored.offset,
          count: 0,
        };
        tails.set(stored.bus, tail);
      } else if (tail.count === 0 || stored.offset !== tail.first + tail.count) {
        // A gap (or a first event): start the tail again at this event.
        tail.slots.fill(undefined);
        tail.first = stored.offset;
        tail.count = 0;
      }
      tail.slots[stored.offset % capacity] = stored;
      if (tail.count < capacity) tail.count += 1;
      else tail.first += 1;
    },
    read(bus, afterOffset, limit) {
      const tail = tails.get(bus);
      if (tail === undefined || tail.count === 0 || afterOffset + 1 < tail.first) return undefined;
      const end = tail.first + tail.count;
      // Past the tail's end: the reader may see a commit not yet reported; its report will
      // add it here and wake the reader, so nothing is missed by answering "nothing yet".
      const to = Math.min(end, afterOffset + 1 + Math.max(0, limit));
      const events: StoredEvent[] = [];
      for (let offset = afterOffset + 1; offset < to; offset++) {
        events.push(tail.slots[offset % capacity] as StoredEvent);
      }
      return events;
    },
    clear() {
      tails.clear();
    },
  };
}
