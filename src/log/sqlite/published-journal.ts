/**
 * What the publish meter counts, kept in memory as commits are reported: per bus, the receive
 * time and billable units of each recent event, by offset. The meter (`metering/publish-meter.ts`)
 * tallies a bus from its checkpoint on; served from here, a tally is a loop over two typed
 * arrays instead of an SQL query on the main thread that read every row's page (2.7 ms per
 * 4,000 events under load, up to 11 ms, each a stall of every request in flight).
 *
 * Each bus's journal is a ring of contiguous offsets, `first` to `first + count - 1`. It starts
 * small and doubles, up to {@link MAX_CAPACITY}, when a commit would push out an event the
 * meter has not tallied yet; at the most, the oldest goes and the meter reads those from SQLite,
 * as it does after a restart (the journal starts empty) or after retention cleared it.
 *
 * @module
 */
import { HourlyTally, type PublishedTally } from "../usage-store.js";

/** Events per bus held at first: 48 KB. */
const MIN_CAPACITY = 4_096;
/** Events per bus held at most: 1.5 MB, more than a second of a busy bus, the meter's delay. */
const MAX_CAPACITY = 131_072;

interface BusJournal {
  receivedAtMs: Float64Array;
  units: Int32Array;
  /** Offset of the oldest event held. */
  first: number;
  count: number;
  /** The highest offset a tally has counted: events up to it may go. */
  tallied: number;
}

/** See the module comment. */
export interface PublishedJournal {
  /** Records a just-committed event (commits are reported in offset order per bus). */
  add(bus: string, offset: number, receivedAtMs: number, units: number): void;
  /**
   * Events and units per hour of receipt of `bus`'s events after `afterOffset`, at most
   * `limit`, when the journal holds the event after `afterOffset`; undefined when the caller
   * must read the log instead. Past the journal's end it answers nothing yet: a commit not
   * reported yet will be, and the meter is woken by it.
   */
  tally(bus: string, afterOffset: number, limit: number): PublishedTally | undefined;
  /** Forgets every bus (after retention deleted events). */
  clear(): void;
}

export function createPublishedJournal(): PublishedJournal {
  const journals = new Map<string, BusJournal>();

  const slotOf = (journal: BusJournal, offset: number): number => offset & (journal.units.length - 1);

  /** Doubles the ring, keeping each offset at its slot (`offset & (capacity - 1)`). */
  const grow = (journal: BusJournal): void => {
    const capacity = journal.units.length * 2;
    const receivedAtMs = new Float64Array(capacity);
    const units = new Int32Array(capacity);
    for (let offset = journal.first; offset < journal.first + journal.count; offset++) {
      const from = slotOf(journal, offset);
      receivedAtMs[offset & (capacity - 1)] = journal.receivedAtMs[from]!;
      units[offset & (capacity - 1)] = journal.units[from]!;
    }
    journal.receivedAtMs = receivedAtMs;
    journal.units = units;
  };

  return {
    add(bus, offset, receivedAtMs, units) {
      let journal = journals.get(bus);
      if (journal === undefined) {
        journal = {
          receivedAtMs: new Float64Array(MIN_CAPACITY),
          units: new Int32Array(MIN_CAPACITY),
          first: offset,
          count: 0,
          tallied: offset - 1,
        };
        journals.set(bus, journal);
      } else if (journal.count === 0 || offset !== journal.first + journal.count) {
        // A gap (or a first event): start again at this event.
        journal.first = offset;
        journal.count = 0;
        journal.tallied = offset - 1;
      }
      if (journal.count === journal.units.length) {
        if (journal.first > journal.tallied && journal.units.length < MAX_CAPACITY) grow(journal);
        else {
          journal.first += 1;
          journal.count -= 1;
        }
      }
      const slot = slotOf(journal, offset);
      journal.receivedAtMs[slot] = receivedAtMs;
      journal.units[slot] = units;
      journal.count += 1;
    },

    tally(bus, afterOffset, limit) {
      const journal = journals.get(bus);
      if (journal === undefined || afterOffset + 1 < journal.first) return undefined;
      const end = journal.first + journal.count;
      if (afterOffset + 1 > end) return undefined;
      const to = Math.min(end, afterOffset + 1 + Math.max(0, limit));
      const hours = new HourlyTally();
      for (let offset = afterOffset + 1; offset < to; offset++) {
        const slot = slotOf(journal, offset);
        hours.add(journal.receivedAtMs[slot]!, journal.units[slot]!);
      }
      const throughOffset = to - 1;
      if (throughOffset > journal.tallied) journal.tallied = throughOffset;
      return { throughOffset: Math.max(afterOffset, throughOffset), events: Math.max(0, to - afterOffset - 1), hours: hours.sorted() };
    },

    clear() {
      journals.clear();
    },
  };
}
