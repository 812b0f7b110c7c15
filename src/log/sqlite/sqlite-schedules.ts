/**
 * Schedule positions on SQLite (`schedule_positions` of the state file, migration 14). One
 * row per schedule, written once per published batch of fires: a schedule fires at most a
 * few times a second, so the write is no cost worth a cache; reads happen when a schedule
 * starts and for its status.
 */
import type Database from "better-sqlite3";
import type { ScheduleStore, StoredSchedulePosition } from "../schedule-store.js";
import { guardStorage } from "./storage-error.js";

/** Creates the store on `db`, an open, migrated connection to the state file. */
export function createSqliteSchedules(db: Database.Database): ScheduleStore {
  const select = db.prepare<[string], { position: string }>(
    "SELECT position FROM schedule_positions WHERE name = ?",
  );
  const selectAll = db.prepare<[], StoredSchedulePosition>(
    "SELECT name, position, recorded_at_ms AS recordedAtMs FROM schedule_positions ORDER BY name",
  );
  const upsert = db.prepare<[string, string, number]>(
    `INSERT INTO schedule_positions (name, position, recorded_at_ms) VALUES (?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET position = excluded.position, recorded_at_ms = excluded.recorded_at_ms`,
  );
  const remove = db.prepare<[string]>("DELETE FROM schedule_positions WHERE name = ?");

  return {
    lastFired: (name) => guardStorage("getSchedulePosition", () => select.get(name))?.position,
    recordFired(name, position, atMs) {
      guardStorage("recordSchedulePosition", () => upsert.run(name, position, atMs));
    },
    forget(name) {
      guardStorage("forgetSchedulePosition", () => remove.run(name));
    },
    list: () => guardStorage("listSchedulePositions", () => selectAll.all()),
  };
}
