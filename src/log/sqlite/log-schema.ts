/**
 * The schema of the log file, `<dataDir>/relaybus.db`: the events and the last offset given
 * per bus. Only the log writer thread writes this file (see `log-writer-worker.ts`); the
 * main thread reads it through its own connection.
 *
 * Column order in `events` is deliberate: the small columns come before `json`, so reading
 * offsets and times (retention) never touches the overflow pages of a large event.
 */
import { schemaVersionOf, type Migration } from "./migrations.js";

/** Every migration of the log file, oldest first. */
export const LOG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "event log and per-bus heads",
    sql: `
      CREATE TABLE events (
        seq            INTEGER PRIMARY KEY,
        bus            TEXT    NOT NULL,
        offset         INTEGER NOT NULL,
        event_id       TEXT    NOT NULL,
        received_at_ms INTEGER NOT NULL,
        size_bytes     INTEGER NOT NULL,
        units          INTEGER NOT NULL,
        json           TEXT    NOT NULL
      );
      CREATE UNIQUE INDEX events_bus_offset ON events (bus, offset);
      -- findById needs it. Its cost depends on the ids: time-ordered ones (UUIDv7, what
      -- PutEvents assigns) touch the same few index pages; random ones dirty a page per row.
      CREATE INDEX events_bus_event_id ON events (bus, event_id);

      -- The last offset ever given per bus. Retention may delete every event of a bus;
      -- this row keeps its offsets from starting again at 1.
      CREATE TABLE log_heads (
        bus         TEXT PRIMARY KEY,
        last_offset INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
];

/** The log file version this code writes. */
export const LOG_SCHEMA_VERSION: number = schemaVersionOf(LOG_MIGRATIONS);
