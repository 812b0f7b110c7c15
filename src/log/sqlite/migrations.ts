/**
 * Numbered, append-only migrations, for each SQLite file Relaybus keeps (the log in
 * `log-schema.ts`, the state in `state-schema.ts`). A migration once released is never
 * edited: a change is a new entry with the next version. `PRAGMA user_version` records the
 * version a file is at; each migration runs in its own transaction together with the bump,
 * so a crash leaves the file at a whole version.
 */
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";

/** One step of a file's schema. `version` is its position: 1, 2, 3, ... without gaps. */
export interface Migration {
  version: number;
  /** What the step is for, shown in logs. */
  description: string;
  sql: string;
}

/** The version a list of migrations brings a file to: its last entry's. */
export function schemaVersionOf(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

/**
 * Brings the file at `db` up to the last of `migrations`; returns the versions it applied
 * (empty when the file was current). Refuses a file written by newer code, whose tables this
 * code might misread, with `InvalidConfig` naming both versions.
 */
export function applyMigrations(db: Database.Database, migrations: readonly Migration[]): number[] {
  assertNumbered(migrations);
  const target = schemaVersionOf(migrations);
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
