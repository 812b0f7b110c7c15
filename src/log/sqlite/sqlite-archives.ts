/**
 * Archives on SQLite, in the state file (tables of migration 6). Archived events are rows of
 * their own (the event's JSON as the log stored it), keyed by (archive id, offset) and
 * indexed by (archive id, received time), so a replay finds the start of its window through
 * the index and then reads in offset order. An archive's counters (events, bytes) live on
 * its row and move in the same transaction as its events, so `GET` never counts rows.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";
import type { CloudEvent, JsonObject, StoredEvent } from "../../types.js";
import type { ArchiveStore, ArchiveState, StoredArchive } from "../archive-store.js";
import { guardStorage, toStorageError } from "./storage-error.js";

interface ArchiveRow {
  id: number;
  name: string;
  bus: string;
  description: string | null;
  pattern: string | null;
  retentionDays: number;
  state: ArchiveState;
  throughOffset: number;
  eventCount: number;
  sizeBytes: number;
  createdAtMs: number;
}

interface ArchivedRow {
  offset: number;
  receivedAtMs: number;
  sizeBytes: number;
  units: number;
  json: string;
}

const ARCHIVE_COLUMNS =
  "id, name, bus, description, pattern, retention_days AS retentionDays, state, through_offset AS throughOffset, " +
  "event_count AS eventCount, size_bytes AS sizeBytes, created_at_ms AS createdAtMs";

const DAY_MS = 86_400_000;

/** Creates the archive store on `db`, an open, migrated connection to the state file. */
export function createSqliteArchives(db: Database.Database): ArchiveStore {
  const listEnabled = db.prepare<[], ArchiveRow>(
    `SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE state = 'enabled' ORDER BY name`,
  );
  const getEnabled = db.prepare<[string], ArchiveRow>(
    `SELECT ${ARCHIVE_COLUMNS} FROM archives WHERE name = ? AND state = 'enabled'`,
  );
  const insertArchive = db.prepare<
    [string, string, string | null, string | null, number, number, number]
  >(
    `INSERT INTO archives (name, bus, description, pattern, retention_days, state, through_offset, created_at_ms)
     VALUES (?, ?, ?, ?, ?, 'enabled', ?, ?)
     ON CONFLICT (name) WHERE state = 'enabled' DO NOTHING`,
  );
  const markDeleting = db.prepare<[string]>(
    "UPDATE archives SET state = 'deleting' WHERE name = ? AND state = 'enabled'",
  );
  const insertEvent = db.prepare<[number, number, number, number, number, string]>(
    `INSERT INTO archived_events (archive_id, offset, received_at_ms, size_bytes, units, json)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (archive_id, offset) DO NOTHING`,
  );
  const advance = db.prepare<[number, number, number, number]>(
    `UPDATE archives SET through_offset = MAX(through_offset, ?), event_count = event_count + ?,
       size_bytes = size_bytes + ? WHERE id = ? AND state = 'enabled'`,
  );
  const selectWindow = db.prepare<[number, number, number, number, number, number], ArchivedRow>(
    `SELECT offset, received_at_ms AS receivedAtMs, size_bytes AS sizeBytes, units, json
     FROM archived_events
     WHERE archive_id = ? AND offset > ? AND offset <= ? AND received_at_ms BETWEEN ? AND ?
     ORDER BY offset LIMIT ?`,
  );
  const countWindow = db
    .prepare<[number, number, number, number], number>(
      `SELECT COUNT(*) FROM archived_events
       WHERE archive_id = ? AND received_at_ms BETWEEN ? AND ? AND offset <= ?`,
    )
    .pluck();
  const firstFrom = db
    .prepare<[number, number], number | null>(
      "SELECT MIN(offset) FROM archived_events WHERE archive_id = ? AND received_at_ms >= ?",
    )
    .pluck();
  const lowestCheckpoint = db
    .prepare<[string], number | null>(
      "SELECT MIN(through_offset) FROM archives WHERE bus = ? AND state = 'enabled'",
    )
    .pluck();
  const withRetention = db.prepare<[], { id: number; retentionDays: number }>(
    "SELECT id, retention_days AS retentionDays FROM archives WHERE state = 'enabled' AND retention_days > 0",
  );
  const deletingIds = db
    .prepare<[], number>("SELECT id FROM archives WHERE state = 'deleting'")
    .pluck();
  // The oldest rows first through the (archive, received) index; a batch at a time.
  const expiredBatch = db.prepare<[number, number, number], { rowid: number; sizeBytes: number }>(
    `SELECT rowid, size_bytes AS sizeBytes FROM archived_events
     WHERE archive_id = ? AND received_at_ms < ? ORDER BY received_at_ms LIMIT ?`,
  );
  const deleteRow = db.prepare<[number]>("DELETE FROM archived_events WHERE rowid = ?");
  const shrink = db.prepare<[number, number, number]>(
    "UPDATE archives SET event_count = event_count - ?, size_bytes = size_bytes - ? WHERE id = ?",
  );
  const deleteBatchOf = db.prepare<[number, number]>(
    `DELETE FROM archived_events WHERE rowid IN
       (SELECT rowid FROM archived_events WHERE archive_id = ? LIMIT ?)`,
  );
  const deleteArchiveRow = db.prepare<[number]>(
    "DELETE FROM archives WHERE id = ? AND state = 'deleting'",
  );

  const commit = db.transaction(
    (archiveId: number, throughOffset: number, events: readonly StoredEvent[]): boolean => {
      let added = 0;
      let bytes = 0;
      for (const e of events) {
        if (
          insertEvent.run(archiveId, e.offset, e.receivedAtMs, e.sizeBytes, e.units, e.json)
            .changes > 0
        ) {
          added++;
          bytes += e.sizeBytes;
        }
      }
      if (advance.run(throughOffset, added, bytes, archiveId).changes > 0) return true;
      // Deleted meanwhile: undo the inserts with the rest of the transaction.
      throw new ArchiveGone();
    },
  );

  const pruneExpiredBatch = db.transaction(
    (archiveId: number, cutoffMs: number, limit: number): number => {
      const rows = expiredBatch.all(archiveId, cutoffMs, limit);
      let bytes = 0;
      for (const row of rows) {
        deleteRow.run(row.rowid);
        bytes += row.sizeBytes;
      }
      if (rows.length > 0) shrink.run(rows.length, bytes, archiveId);
      return rows.length;
    },
  );

  return {
    list: () => guardStorage("listArchives", () => listEnabled.all().map(toArchive)),
    get(name) {
      const row = guardStorage("getArchive", () => getEnabled.get(name));
      return row === undefined ? undefined : toArchive(row);
    },
    create(definition, throughOffset, createdAtMs) {
      const changes = guardStorage(
        "createArchive",
        () =>
          insertArchive.run(
            definition.name,
            definition.bus,
            definition.description ?? null,
            definition.pattern === undefined ? null : JSON.stringify(definition.pattern),
            definition.retentionDays,
            throughOffset,
            createdAtMs,
          ).changes,
      );
      if (changes === 0) {
        throw new RelaybusError(
          "ArchiveAlreadyExists",
          `archive "${definition.name}" already exists`,
          {
            details: { archive: definition.name },
          },
        );
      }
      const row = guardStorage("getArchive", () => getEnabled.get(definition.name));
      if (row === undefined)
        throw new RelaybusError(
          "InternalError",
          `archive "${definition.name}" vanished after its creation`,
        );
      return toArchive(row);
    },
    delete: (name) => guardStorage("deleteArchive", () => markDeleting.run(name).changes > 0),
    commitArchived(archiveId, throughOffset, events) {
      try {
        return commit.immediate(archiveId, throughOffset, events);
      } catch (error) {
        if (error instanceof ArchiveGone) return false;
        throw toStorageError(error, "commitArchived");
      }
    },
    readWindow(archiveId, bus, afterOffset, window, limit) {
      return guardStorage("readArchive", () =>
        selectWindow.all(
          archiveId,
          afterOffset,
          window.throughOffset,
          window.fromMs,
          window.toMs,
          limit,
        ),
      ).map((row) => ({
        bus,
        offset: row.offset,
        receivedAtMs: row.receivedAtMs,
        sizeBytes: row.sizeBytes,
        units: row.units,
        json: row.json,
        event: JSON.parse(row.json) as CloudEvent,
      }));
    },
    countWindow: (archiveId, window) =>
      guardStorage(
        "countArchive",
        () => countWindow.get(archiveId, window.fromMs, window.toMs, window.throughOffset) ?? 0,
      ),
    firstOffsetFrom(archiveId, fromMs) {
      const first = guardStorage("readArchive", () => firstFrom.get(archiveId, fromMs));
      return first === null || first === undefined ? undefined : first;
    },
    async pruneOlderThan(nowMs, batchSize = 2_000) {
      let expired = 0;
      let ofDeletedArchives = 0;
      for (const archive of guardStorage("pruneArchives", () => withRetention.all())) {
        const cutoffMs = nowMs - archive.retentionDays * DAY_MS;
        for (;;) {
          const deleted = guardStorage("pruneArchives", () =>
            pruneExpiredBatch.immediate(archive.id, cutoffMs, batchSize),
          );
          expired += deleted;
          if (deleted < batchSize) break;
          await yieldToEventLoop();
        }
      }
      for (const id of guardStorage("pruneArchives", () => deletingIds.all())) {
        for (;;) {
          const deleted = guardStorage(
            "pruneArchives",
            () => deleteBatchOf.run(id, batchSize).changes,
          );
          ofDeletedArchives += deleted;
          if (deleted < batchSize) break;
          await yieldToEventLoop();
        }
        guardStorage("pruneArchives", () => deleteArchiveRow.run(id));
      }
      return { expired, ofDeletedArchives };
    },
    lowestCheckpoint(bus) {
      const lowest = guardStorage("archiveCheckpoints", () => lowestCheckpoint.get(bus));
      return lowest === null || lowest === undefined ? undefined : lowest;
    },
  };
}

/** Thrown inside the commit transaction to roll it back when the archive was deleted. */
class ArchiveGone extends Error {}

function toArchive(row: ArchiveRow): StoredArchive {
  return {
    id: row.id,
    name: row.name,
    bus: row.bus,
    ...(row.description === null ? {} : { description: row.description }),
    ...(row.pattern === null ? {} : { pattern: JSON.parse(row.pattern) as JsonObject }),
    retentionDays: row.retentionDays,
    state: row.state,
    throughOffset: row.throughOffset,
    eventCount: row.eventCount,
    sizeBytes: row.sizeBytes,
    createdAtMs: row.createdAtMs,
  };
}
