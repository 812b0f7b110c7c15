/**
 * The schema of the SQLite file, as numbered, append-only migrations. A migration once
 * released is never edited: a change is a new entry with the next version. `PRAGMA
 * user_version` records the version a file is at; each migration runs in its own transaction
 * together with the bump, so a crash leaves the file at a whole version.
 */
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";

/** One step of the schema. `version` is its position: 1, 2, 3, ... without gaps. */
export interface Migration {
  version: number;
  /** What the step is for, shown in logs. */
  description: string;
  sql: string;
}

/**
 * Every migration, oldest first. Column order in `events` is deliberate: the small columns
 * come before `json`, so reading offsets and times (retention) never touches the overflow
 * pages of a large event.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "event log, catalog, delivery state and dead letters",
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
      CREATE INDEX events_bus_event_id ON events (bus, event_id);

      -- The last offset ever given per bus. Retention may delete every event of a bus;
      -- this row keeps its offsets from starting again at 1.
      CREATE TABLE log_heads (
        bus         TEXT PRIMARY KEY,
        last_offset INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE buses (
        name          TEXT PRIMARY KEY,
        description   TEXT,
        created_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE rules (
        bus           TEXT    NOT NULL,
        name          TEXT    NOT NULL,
        definition    TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (bus, name)
      ) WITHOUT ROWID;

      CREATE TABLE dispatch_checkpoints (
        bus            TEXT PRIMARY KEY,
        through_offset INTEGER NOT NULL,
        updated_at_ms  INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE deliveries (
        id                   TEXT    NOT NULL UNIQUE,
        bus                  TEXT    NOT NULL,
        offset               INTEGER NOT NULL,
        event_id             TEXT    NOT NULL,
        rule                 TEXT    NOT NULL,
        target_id            TEXT    NOT NULL,
        event_received_at_ms INTEGER NOT NULL,
        created_at_ms        INTEGER NOT NULL,
        next_attempt_at_ms   INTEGER NOT NULL,
        retry                TEXT    NOT NULL,
        attempts             TEXT    NOT NULL,
        request              TEXT    NOT NULL
      );
      CREATE INDEX deliveries_due ON deliveries (next_attempt_at_ms);

      CREATE TABLE dead_letters (
        id                   TEXT    NOT NULL UNIQUE,
        bus                  TEXT    NOT NULL,
        offset               INTEGER NOT NULL,
        event_id             TEXT    NOT NULL,
        rule                 TEXT    NOT NULL,
        target_id            TEXT    NOT NULL,
        event_received_at_ms INTEGER NOT NULL,
        created_at_ms        INTEGER NOT NULL,
        next_attempt_at_ms   INTEGER NOT NULL,
        reason               TEXT    NOT NULL,
        dead_at_ms           INTEGER NOT NULL,
        retry                TEXT    NOT NULL,
        attempts             TEXT    NOT NULL,
        request              TEXT    NOT NULL
      );
      CREATE INDEX dead_letters_dead_at ON dead_letters (dead_at_ms);
      CREATE INDEX dead_letters_bus_dead_at ON dead_letters (bus, dead_at_ms);
    `,
  },
];

/** The version this code writes: the last migration's. */
export const SCHEMA_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

/**
 * Brings the file at `db` up to {@link SCHEMA_VERSION}; returns the versions it applied
 * (empty when the file was current). Refuses a file written by newer code, whose tables this
 * code might misread, with `InvalidConfig` naming both versions.
 */
export function applyMigrations(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
): number[] {
  assertNumbered(migrations);
  const target = migrations.at(-1)?.version ?? 0;
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > target) {
    throw new RelaybusError(
      "InvalidConfig",
      `${db.name}: the database is at schema version ${current} but this Relaybus knows only up to ${target}; ` +
        "run a newer Relaybus or point dataDir at another directory",
      { details: { path: db.name, databaseVersion: current, codeVersion: target } },
    );
  }
  const applied: number[] = [];
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    // IMMEDIATE takes the write lock first, so two processes opening a fresh file cannot
    // both run the same step; the loser waits (busy_timeout) and then finds it done.
    db.transaction(() => {
      const now = db.pragma("user_version", { simple: true }) as number;
      if (now >= migration.version) return;
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
      applied.push(migration.version);
    }).immediate();
  }
  return applied;
}

function assertNumbered(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(
        `migrations must be numbered 1, 2, 3, ...: entry ${index} has version ${migration.version}`,
      );
    }
  });
}
