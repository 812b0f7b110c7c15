/**
 * The log's write side: inserts, per-bus heads and retention deletes on the only connection
 * that writes the log file. It runs in the log writer thread (`log-writer-worker.ts`) and is
 * synchronous: one call, one transaction.
 *
 * Invariant: the events of a bus always form one contiguous range of offsets. Appends add
 * at the end, retention removes only from the start. The main thread's `count` relies on it.
 */
import type Database from "better-sqlite3";
import type { AppendMessage } from "./log-writer-protocol.js";

/** One append call as the writer queues it: a slice of the message that brought it. */
export interface QueuedCall {
  callId: number;
  message: AppendMessage;
  /** Index of the call's first event in the message's arrays. */
  start: number;
  count: number;
}

/** The outcome of one retention batch of one bus. */
export interface PruneBatch {
  deleted: number;
  /** True when the batch was full and older events may remain. */
  more: boolean;
}

/** The write side of the log on one connection. */
export interface LogWriter {
  /**
   * Stores the calls of one batch in one transaction and returns every event's offset, in
   * order. Offsets are taken here, at commit, so a failed commit hands them back and the next
   * one reuses them: no gaps. Throws what SQLite threw; then nothing of the batch is stored.
   */
  commit(batch: readonly QueuedCall[]): number[];
  /**
   * Deletes up to `batchSize` of the oldest events of `bus` received before `cutoffMs`, but
   * none from offset `keepFrom` on, keeping the remaining range contiguous.
   */
  pruneBatch(bus: string, cutoffMs: number, keepFrom: number, batchSize: number): PruneBatch;
}

/** Creates the writer on `db`, an open, migrated connection it alone writes through. */
export function createLogWriter(db: Database.Database): LogWriter {
  // Prepared once: the hot path binds and runs, nothing else.
  const insertEvent = db.prepare<[string, number, string, number, number, number, string]>(
    "INSERT INTO events (bus, offset, event_id, received_at_ms, size_bytes, units, json) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const upsertHead = db.prepare<[string, number]>(
    "INSERT INTO log_heads (bus, last_offset) VALUES (?, ?) ON CONFLICT (bus) DO UPDATE SET last_offset = excluded.last_offset",
  );
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

  const writeBatch = db.transaction(
    (batch: readonly QueuedCall[], offsets: readonly number[], touched: Iterable<string>) => {
      let k = 0;
      for (const call of batch) {
        const m = call.message;
        for (let i = call.start; i < call.start + call.count; i++) {
          insertEvent.run(
            m.buses[i] as string,
            offsets[k++] as number,
            m.ids[i] as string,
            m.receivedAtMs,
            m.sizes[i] as number,
            m.units[i] as number,
            m.jsons[i] as string,
          );
        }
      }
      for (const bus of touched) upsertHead.run(bus, heads.get(bus) ?? 0);
    },
  );

  return {
    commit(batch) {
      const before = new Map<string, number>();
      const offsets: number[] = [];
      for (const call of batch) {
        const buses = call.message.buses;
        for (let i = call.start; i < call.start + call.count; i++) {
          const bus = buses[i] as string;
          const previous = heads.get(bus) ?? 0;
          if (!before.has(bus)) before.set(bus, previous);
          heads.set(bus, previous + 1);
          offsets.push(previous + 1);
        }
      }
      try {
        writeBatch(batch, offsets, before.keys());
      } catch (error) {
        for (const [bus, previous] of before) {
          if (previous === 0) heads.delete(bus);
          else heads.set(bus, previous);
        }
        throw error;
      }
      return offsets;
    },
    pruneBatch(bus, cutoffMs, keepFrom, batchSize) {
      const rows = selectPrunable.all(bus, keepFrom, batchSize);
      // Delete only the prefix older than the cutoff, keeping the range contiguous. With a
      // clock that stepped back, an old event behind a newer one waits for the next run.
      let end = 0;
      while (end < rows.length && (rows[end]?.[1] ?? Infinity) < cutoffMs) end += 1;
      const first = rows[0]?.[0];
      const last = rows[end - 1]?.[0];
      if (end === 0 || first === undefined || last === undefined) {
        return { deleted: 0, more: false };
      }
      const deleted = deleteRange.run(bus, first, last).changes;
      return { deleted, more: end === rows.length && rows.length === batchSize };
    },
  };
}
