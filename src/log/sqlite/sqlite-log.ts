/**
 * The event log on SQLite: one `events` table, offsets per bus kept in memory and assigned
 * at commit time, appends group-committed (see `group-commit.ts`).
 *
 * Invariant: the events of a bus always form one contiguous range of offsets. Appends add
 * at the end, retention removes only from the start. `count` relies on it.
 */
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";
import type { CloudEvent, Clock, EventToAppend, Logger, StoredEvent } from "../../types.js";
import type { LogEngine, LogStats } from "../log-engine.js";
import { createGroupCommitter } from "./group-commit.js";
import { guardStorage, toStorageError } from "./storage-error.js";

/** What {@link createSqliteLog} needs: an open, migrated connection it shares with the other stores. */
export interface SqliteLogOptions {
  db: Database.Database;
  clock: Clock;
  logger: Logger;
  /** Most events in one commit. Default 2,000 (the config default). */
  groupCommitMaxEvents?: number;
  /** Most events one retention batch deletes before yielding the connection. Default 500. */
  pruneBatchSize?: number;
}

interface EventRow {
  bus: string;
  offset: number;
  receivedAtMs: number;
  sizeBytes: number;
  units: number;
  json: string;
}

const EVENT_COLUMNS =
  "bus, offset, received_at_ms AS receivedAtMs, size_bytes AS sizeBytes, units, json";

/**
 * Creates the SQLite log on `options.db`. It does not own the connection: `close()` commits
 * what is queued and stops accepting appends; the storage closes the connection after it.
 */
export function createSqliteLog(options: SqliteLogOptions): LogEngine {
  const { db, clock, logger } = options;
  const pruneBatchSize = options.pruneBatchSize ?? 500;

  // Prepared once: the hot path binds and runs, nothing else.
  const insertEvent = db.prepare<[string, number, string, number, number, number, string]>(
    "INSERT INTO events (bus, offset, event_id, received_at_ms, size_bytes, units, json) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const upsertHead = db.prepare<[string, number]>(
    "INSERT INTO log_heads (bus, last_offset) VALUES (?, ?) ON CONFLICT (bus) DO UPDATE SET last_offset = excluded.last_offset",
  );
  const selectAfter = db.prepare<[string, number, number], EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE bus = ? AND offset > ? ORDER BY offset LIMIT ?`,
  );
  const selectLast = db.prepare<[string, number], EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE bus = ? ORDER BY offset DESC LIMIT ?`,
  );
  const selectById = db.prepare<[string, string], EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE bus = ? AND event_id = ? ORDER BY offset DESC LIMIT 1`,
  );
  const selectFirstOffset = db
    .prepare<[string], number | null>("SELECT MIN(offset) FROM events WHERE bus = ?")
    .pluck();
  const selectPrunable = db
    .prepare<[string, number, number], [number, number]>(
      "SELECT offset, received_at_ms FROM events WHERE bus = ? AND offset < ? ORDER BY offset LIMIT ?",
    )
    .raw();
  const deleteRange = db.prepare<[string, number, number]>(
    "DELETE FROM events WHERE bus = ? AND offset >= ? AND offset <= ?",
  );

  /** Last committed offset per bus; loaded once, then kept by the commits themselves. */
  const heads = new Map<string, number>();
  for (const row of db
    .prepare<[], { bus: string; lastOffset: number }>(
      "SELECT bus, last_offset AS lastOffset FROM log_heads",
    )
    .all()) {
    heads.set(row.bus, row.lastOffset);
  }

  const listeners = new Set<(bus: string) => void>();
  const stats: LogStats = { commits: 0, committedEvents: 0, failedCommits: 0 };
  let closed = false;

  const writeBatch = db.transaction(
    (calls: readonly StoredEvent[][], touched: Iterable<string>) => {
      for (const call of calls) {
        for (const e of call) {
          insertEvent.run(
            e.bus,
            e.offset,
            e.event.id,
            e.receivedAtMs,
            e.sizeBytes,
            e.units,
            e.json,
          );
        }
      }
      for (const bus of touched) upsertHead.run(bus, heads.get(bus) ?? 0);
    },
  );

  const commit = (calls: readonly (readonly EventToAppend[])[]): StoredEvent[][] => {
    if (closed) throw closedError();
    const receivedAtMs = clock.nowMs();
    // Offsets are taken here, not at submit, so a failed commit can hand them back and the
    // next one reuses them: no gaps.
    const before = new Map<string, number>();
    let eventCount = 0;
    const stored = calls.map((call) =>
      call.map((e): StoredEvent => {
        const previous = heads.get(e.bus) ?? 0;
        if (!before.has(e.bus)) before.set(e.bus, previous);
        heads.set(e.bus, previous + 1);
        eventCount += 1;
        return {
          bus: e.bus,
          event: e.event,
          json: e.json,
          sizeBytes: e.sizeBytes,
          units: e.units,
          offset: previous + 1,
          receivedAtMs,
        };
      }),
    );
    try {
      writeBatch(stored, before.keys());
    } catch (error) {
      for (const [bus, previous] of before) {
        if (previous === 0) heads.delete(bus);
        else heads.set(bus, previous);
      }
      stats.failedCommits += 1;
      const wrapped = toStorageError(error, "append");
      logger.error("log append failed; the batch was rolled back", {
        calls: calls.length,
        events: eventCount,
        ...wrapped.details,
      });
      throw wrapped;
    }
    stats.commits += 1;
    stats.committedEvents += eventCount;
    for (const bus of before.keys()) notify(bus);
    return stored;
  };

  const committer = createGroupCommitter<EventToAppend, StoredEvent>({
    maxItems: options.groupCommitMaxEvents ?? 2_000,
    commit,
  });

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

  async function pruneBus(bus: string, cutoffMs: number, keepFrom: number): Promise<number> {
    let deleted = 0;
    while (!closed) {
      const rows = guardStorage("prune", () => selectPrunable.all(bus, keepFrom, pruneBatchSize));
      // Delete only the prefix older than the cutoff, keeping the range contiguous. With a
      // clock that stepped back, an old event behind a newer one waits for the next run.
      let end = 0;
      while (end < rows.length && (rows[end]?.[1] ?? Infinity) < cutoffMs) end += 1;
      const first = rows[0]?.[0];
      const last = rows[end - 1]?.[0];
      if (end === 0 || first === undefined || last === undefined) break;
      deleted += guardStorage("prune", () => deleteRange.run(bus, first, last).changes);
      if (end < rows.length || rows.length < pruneBatchSize) break;
      // Yield between batches: appends queued meanwhile commit before the next delete.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return deleted;
  }

  return {
    append(events) {
      if (closed) return Promise.reject(closedError());
      if (events.length === 0) return Promise.resolve([]);
      return committer.submit(events);
    },
    async read(bus, afterOffset, limit) {
      return guardStorage("read", () => selectAfter.all(bus, afterOffset, limit)).map(
        toStoredEvent,
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
      return first === null || first === undefined ? 0 : last - first + 1;
    },
    async findById(bus, id) {
      const row = guardStorage("findById", () => selectById.get(bus, id));
      return row === undefined ? undefined : toStoredEvent(row);
    },
    onAppend(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async pruneOlderThan(cutoffMs, keepFrom) {
      let deleted = 0;
      for (const bus of [...heads.keys()]) {
        deleted += await pruneBus(bus, cutoffMs, keepFrom(bus));
      }
      return deleted;
    },
    stats() {
      return { ...stats };
    },
    async close() {
      if (closed) return;
      committer.drain();
      closed = true;
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
