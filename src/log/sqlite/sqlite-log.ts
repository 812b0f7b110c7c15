/**
 * The event log on SQLite, as the main thread sees it. Writes go to the log writer thread
 * (`log-writer-worker.ts`), which owns the only write connection; reads go through this
 * thread's own read-only connection to the same file (WAL: readers never block the writer).
 *
 * Group commit happens in two places. Here, everything appended in one turn of the event
 * loop is handed over as ONE message. In the thread, everything that arrived while it was
 * committing goes into the next transaction. The two overlap: while the thread fsyncs, this
 * thread parses the next requests. A caller's promise resolves when the thread reports its
 * commit (the ack point); `onAppend` listeners fire then.
 */
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";
import type { CloudEvent, Clock, EventToAppend, Logger, StoredEvent } from "../../types.js";
import type { LogEngine, LogStats } from "../log-engine.js";
import { HOUR_MS, type PublishedTally } from "../usage-store.js";
import type { LogWriterConfig } from "./log-writer-protocol.js";
import type { CheckpointerConfig } from "./log-checkpointer-protocol.js";
import { CallsInFlight } from "./calls-in-flight.js";
import { startLogCheckpointer } from "./log-checkpointer-thread.js";
import { startLogWriterThread } from "./log-writer-thread.js";
import { createPublishedJournal } from "./published-journal.js";
import { createRecentEvents } from "./recent-events.js";
import { fromWriterError, guardStorage } from "./storage-error.js";

/** What {@link createSqliteLog} needs. */
export interface SqliteLogOptions {
  /** The main thread's connection to the migrated log file; only read through. */
  reader: Database.Database;
  /** How to start the writer thread. */
  writer: LogWriterConfig;
  /** How to start the checkpointer thread, and after how many committed bytes it runs. */
  checkpointer: CheckpointerConfig & { afterBytes: number };
  clock: Clock;
  logger: Logger;
  /** Most events one retention batch deletes before the writer commits waiting appends. Default 500. */
  pruneBatchSize?: number;
}

/** The SQLite log: the {@link LogEngine} plus what the storage needs to manage its thread. */
export interface SqliteLog extends LogEngine {
  /**
   * Events and units per hour of receipt of `bus`'s events after `afterOffset`, at most
   * `limit`: what the publish meter counts. From the journal of reported commits when it
   * holds that position (`published-journal.ts`), else summed in SQL from offsets, receive
   * times and units alone, never the events' JSON.
   */
  tallyPublished(bus: string, afterOffset: number, limit: number): Promise<PublishedTally>;
  /** Runs one PRAGMA on the writer thread's connection and returns its simple result. */
  writerPragma(pragma: string): Promise<unknown>;
  /** True until the writer thread has ended. */
  readonly writerRunning: boolean;
}

interface EventRow {
  bus: string;
  offset: number;
  receivedAtMs: number;
  sizeBytes: number;
  units: number;
  json: string;
}

interface PendingCall {
  id: number;
  events: readonly EventToAppend[];
  receivedAtMs: number;
  resolve(stored: StoredEvent[]): void;
  reject(error: unknown): void;
}

/** Events per bus kept in memory for readers right behind the writer; see recent-events.ts. */
const RECENT_EVENTS_PER_BUS = 1_024;

/** Calls handed to a busy writer together, at most; see `append`. */
const HANDOVER_CHUNK_CALLS = 16;

const EVENT_COLUMNS =
  "bus, offset, received_at_ms AS receivedAtMs, size_bytes AS sizeBytes, units, json";

/**
 * Creates the log and starts its writer thread. It does not own `reader`: `close()` commits
 * what is queued and ends the thread; the storage closes the connection after it.
 */
export function createSqliteLog(options: SqliteLogOptions): SqliteLog {
  const { reader, clock, logger } = options;
  const pruneBatchSize = options.pruneBatchSize ?? 500;

  const selectAfter = reader.prepare<[string, number, number], EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE bus = ? AND offset > ? ORDER BY offset LIMIT ?`,
  );
  const selectLast = reader.prepare<[string, number], EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE bus = ? ORDER BY offset DESC LIMIT ?`,
  );
  const selectById = reader.prepare<[string, string], EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE bus = ? AND event_id = ? ORDER BY offset DESC LIMIT 1`,
  );
  const selectFirstOffset = reader
    .prepare<[string], number | null>("SELECT MIN(offset) FROM events WHERE bus = ?")
    .pluck();
  const selectReceivedAtOrAfter = reader.prepare<[string, number], { offset: number; receivedAtMs: number }>(
    "SELECT offset, received_at_ms AS receivedAtMs FROM events WHERE bus = ? AND offset >= ? ORDER BY offset LIMIT 1",
  );
  // Only offsets, receive times and units: these columns come before `json` in the row
  // (log-schema.ts), so a tally never parses an event nor reads a large one's overflow pages.
  const selectPublished = reader.prepare<
    [string, number, number],
    { hourMs: number; events: number; units: number; throughOffset: number }
  >(
    `SELECT (received_at_ms / ${HOUR_MS}) * ${HOUR_MS} AS hourMs, COUNT(*) AS events,
       SUM(units) AS units, MAX(offset) AS throughOffset
     FROM (SELECT offset, received_at_ms, units FROM events WHERE bus = ? AND offset > ? ORDER BY offset LIMIT ?)
     GROUP BY hourMs ORDER BY hourMs`,
  );

  /**
   * Last committed offset per bus, as acknowledged: loaded before the thread starts, then
   * moved by its commit reports. The thread keeps its own copy, which it moves at commit.
   */
  const heads = new Map<string, number>();
  for (const row of reader
    .prepare<[], { bus: string; lastOffset: number }>(
      "SELECT bus, last_offset AS lastOffset FROM log_heads",
    )
    .all()) {
    heads.set(row.bus, row.lastOffset);
  }

  const recent = createRecentEvents(RECENT_EVENTS_PER_BUS);
  const journal = createPublishedJournal();
  const listeners = new Set<(bus: string) => void>();
  const stats: LogStats = { commits: 0, committedEvents: 0, failedCommits: 0 };
  /** Calls handed to the thread, by id, until it answers. */
  const pending = new CallsInFlight<PendingCall>();
  /** Calls of the current turn, handed over together at its end. */
  let outbox: PendingCall[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let nextCallId = 1;
  let closed = false;
  let stoppedError: RelaybusError | undefined;
  let closing: Promise<void> | undefined;

  const checkpointer = startLogCheckpointer(options.checkpointer, logger);
  const thread = startLogWriterThread(options.writer, {
    onCommitted(message) {
      const touched = new Set<string>();
      let k = 0;
      for (const id of message.callIds) {
        const call = pending.take(id);
        if (call === undefined) continue;
        const stored = call.events.map((e): StoredEvent => {
          const offset = message.offsets[k++] as number;
          if (offset > (heads.get(e.bus) ?? 0)) heads.set(e.bus, offset);
          touched.add(e.bus);
          return {
            bus: e.bus,
            event: e.event,
            json: e.json,
            sizeBytes: e.sizeBytes,
            units: e.units,
            offset,
            receivedAtMs: call.receivedAtMs,
          };
        });
        for (const event of stored) {
          recent.add(event);
          journal.add(event.bus, event.offset, event.receivedAtMs, event.units);
          checkpointer.committed(event.sizeBytes);
        }
        call.resolve(stored);
      }
      stats.commits += 1;
      stats.committedEvents += k;
      for (const bus of touched) notify(bus);
    },
    onFailed(message) {
      stats.failedCommits += 1;
      const error = fromWriterError(message.error, "append");
      logger.error("log append failed; the batch was rolled back", {
        calls: message.callIds.length,
        events: message.events,
        ...error.details,
      });
      for (const id of message.callIds) {
        pending.take(id)?.reject(error);
      }
    },
    onExit(error) {
      closed = true;
      stoppedError = error;
      if (error !== undefined) {
        logger.error("log writer thread stopped", { error: error.message });
      }
      const failure = error ?? closedError();
      for (const call of [...pending.values(), ...outbox]) call.reject(failure);
      pending.clear();
      outbox = [];
    },
  });

  /** Hands the calls waiting in the outbox to the thread as one message. */
  function handOver() {
    if (scheduled !== undefined) clearImmediate(scheduled);
    scheduled = undefined;
    if (outbox.length === 0) return;
    const calls = outbox;
    outbox = [];
    const receivedAtMs = clock.nowMs();
    const callIds: number[] = [];
    const counts: number[] = [];
    const buses: string[] = [];
    const ids: string[] = [];
    const jsons: string[] = [];
    const sizes: number[] = [];
    const units: number[] = [];
    for (const call of calls) {
      call.receivedAtMs = receivedAtMs;
      pending.add(call.id, call);
      callIds.push(call.id);
      counts.push(call.events.length);
      for (const e of call.events) {
        buses.push(e.bus);
        ids.push(e.event.id);
        jsons.push(e.json);
        sizes.push(e.sizeBytes);
        units.push(e.units);
      }
    }
    thread.append({
      type: "append",
      callIds,
      counts,
      receivedAtMs,
      buses,
      ids,
      jsons,
      sizes,
      units,
    });
  }

  function notify(bus: string) {
    for (const listener of listeners) {
      try {
        listener(bus);
      } catch (error) {
        // A listener's bug must not turn a committed append into a failed one.
        logger.error("log onAppend listener threw", { bus, error: String(error) });
      }
    }
  }

  return {
    append(events) {
      if (closed) return Promise.reject(stoppedError ?? closedError());
      if (events.length === 0) return Promise.resolve([]);
      return new Promise<StoredEvent[]>((resolve, reject) => {
        outbox.push({ id: nextCallId++, events, receivedAtMs: 0, resolve, reject });
        // An idle writer gets the call at once, so its commit overlaps the parsing of the
        // rest of this turn's requests. A busy writer gets calls in chunks as they come
        // and the remainder at the end of the turn (setImmediate runs after this turn's
        // I/O callbacks): when its fsync ends, everything that queued meanwhile goes into
        // its next transaction. Handing over only once per turn instead would make this
        // thread and the writer take turns rather than overlap.
        if (pending.size === 0 || outbox.length >= HANDOVER_CHUNK_CALLS) handOver();
        else scheduled ??= setImmediate(handOver);
      });
    },
    async read(bus, afterOffset, limit) {
      return (
        recent.read(bus, afterOffset, limit) ??
        guardStorage("read", () => selectAfter.all(bus, afterOffset, limit)).map(toStoredEvent)
      );
    },
    async readLast(bus, limit) {
      return guardStorage("readLast", () => selectLast.all(bus, limit))
        .reverse()
        .map(toStoredEvent);
    },
    async lastOffset(bus) {
      return heads.get(bus) ?? 0;
    },
    async count(bus) {
      const last = heads.get(bus) ?? 0;
      const first = guardStorage("count", () => selectFirstOffset.get(bus));
      // The reader may see a commit whose report has not arrived yet: never negative.
      return first === null || first === undefined ? 0 : Math.max(0, last - first + 1);
    },
    async findById(bus, id) {
      const row = guardStorage("findById", () => selectById.get(bus, id));
      return row === undefined ? undefined : toStoredEvent(row);
    },
    async firstOffsetReceivedFrom(bus, timeMs) {
      // A binary search over offsets through the (bus, offset) index, ~log2(n) lookups,
      // rather than a scan of the bus: the events table has no index on received_at_ms.
      return guardStorage("firstOffsetReceivedFrom", () => {
        const first = selectFirstOffset.get(bus);
        if (first === null || first === undefined) return undefined;
        let low = first;
        let high = heads.get(bus) ?? first;
        let found: number | undefined;
        while (low <= high) {
          const middle = Math.floor((low + high) / 2);
          const row = selectReceivedAtOrAfter.get(bus, middle);
          if (row === undefined) {
            high = middle - 1;
          } else if (row.receivedAtMs >= timeMs) {
            found = row.offset;
            high = middle - 1;
          } else {
            low = row.offset + 1;
          }
        }
        return found;
      });
    },
    onAppend(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async pruneOlderThan(cutoffMs, keepFrom) {
      if (closed) return 0;
      const keep = [...heads.keys()].map((bus): [string, number] => [bus, keepFrom(bus)]);
      if (keep.length === 0) return 0;
      // Retention deletes from the old end; the tails may hold deleted events.
      recent.clear();
      journal.clear();
      const deleted = await thread.request({
        type: "prune",
        cutoffMs,
        keepFrom: keep,
        batchSize: pruneBatchSize,
      });
      return deleted as number;
    },
    async tallyPublished(bus, afterOffset, limit) {
      const fromJournal = journal.tally(bus, afterOffset, limit);
      if (fromJournal !== undefined) return fromJournal;
      const hours = guardStorage("tallyPublished", () => selectPublished.all(bus, afterOffset, limit));
      let throughOffset = afterOffset;
      let events = 0;
      for (const hour of hours) {
        events += hour.events;
        if (hour.throughOffset > throughOffset) throughOffset = hour.throughOffset;
      }
      return {
        throughOffset,
        events,
        hours: hours.map(({ hourMs, events: count, units }) => ({ hourMs, events: count, units })),
      };
    },
    writerPragma(pragma) {
      return thread.request({ type: "pragma", pragma });
    },
    get writerRunning() {
      return thread.running;
    },
    stats() {
      return { ...stats };
    },
    close() {
      closing ??= (async () => {
        if (scheduled !== undefined) clearImmediate(scheduled);
        // Queued calls go out before the close message: the thread commits them first.
        if (!closed) handOver();
        closed = true;
        await thread.close();
        await checkpointer.close();
      })();
      return closing;
    },
  };
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    bus: row.bus,
    event: JSON.parse(row.json) as CloudEvent,
    json: row.json,
    sizeBytes: row.sizeBytes,
    units: row.units,
    offset: row.offset,
    receivedAtMs: row.receivedAtMs,
  };
}

function closedError(): RelaybusError {
  return new RelaybusError("ServiceUnavailable", "storage unavailable: the log is closed", {
    details: { operation: "append" },
  });
}
