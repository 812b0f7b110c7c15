import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import Database from "better-sqlite3";
import { isRelaybusError } from "../../src/errors.js";
import { applyMigrations, openSqliteStorage, SCHEMA_VERSION } from "../../src/log/sqlite/index.js";

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-migrations-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A raw connection closed after the test. */
function rawDatabase(t: TestContext, path: string): Database.Database {
  const db = new Database(path);
  t.after(() => db.close());
  return db;
}

test("migrations - a fresh file is brought to the latest version, a second run does nothing", (t) => {
  const db = rawDatabase(t, join(tempDir(t), "relaybus.db"));
  assert.deepEqual(
    applyMigrations(db),
    Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
  );
  assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
  assert.deepEqual(applyMigrations(db), []);
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .pluck()
    .all();
  assert.deepEqual(tables, [
    "buses",
    "dead_letters",
    "deliveries",
    "dispatch_checkpoints",
    "events",
    "log_heads",
    "rules",
  ]);
});

test("migrations - a failing step leaves the file at the last whole version", (t) => {
  const db = rawDatabase(t, join(tempDir(t), "relaybus.db"));
  const migrations = [
    { version: 1, description: "one", sql: "CREATE TABLE one (a INTEGER)" },
    {
      version: 2,
      description: "broken",
      sql: "CREATE TABLE two (a INTEGER); INSERT INTO nowhere VALUES (1);",
    },
  ];
  assert.throws(() => applyMigrations(db, migrations), /no such table: nowhere/);
  assert.equal(db.pragma("user_version", { simple: true }), 1);
  assert.equal(
    db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'two'").pluck().get(),
    0,
  );
});

test("migrations - versions must run 1, 2, 3 without gaps", (t) => {
  const db = rawDatabase(t, join(tempDir(t), "relaybus.db"));
  assert.throws(
    () => applyMigrations(db, [{ version: 2, description: "skips one", sql: "SELECT 1" }]),
    /entry 0 has version 2/,
  );
});

test("migrations - a file from a newer Relaybus refuses to open, naming both versions", (t) => {
  const path = join(tempDir(t), "relaybus.db");
  const db = new Database(path);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(
    () => openSqliteStorage({ path, durability: "fsync" }),
    (error: unknown) =>
      isRelaybusError(error, "InvalidConfig") &&
      error.message.includes(`schema version ${SCHEMA_VERSION + 1}`) &&
      error.message.includes(`only up to ${SCHEMA_VERSION}`),
  );
});

test("storage - opening creates the directory, uses WAL and the durability asked for", async (t) => {
  const dir = tempDir(t);
  const full = openSqliteStorage({ path: join(dir, "a", "b", "full.db"), durability: "fsync" });
  const normal = openSqliteStorage({ path: join(dir, "normal.db"), durability: "fsync-wal-only" });
  try {
    assert.equal(full.database.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(full.database.pragma("synchronous", { simple: true }), 2, "FULL");
    assert.equal(normal.database.pragma("synchronous", { simple: true }), 1, "NORMAL");
    assert.ok((full.database.pragma("busy_timeout", { simple: true }) as number) > 0);
  } finally {
    await full.close();
    await normal.close();
  }
  assert.equal(full.database.open, false);
  await full.close(); // closing twice is harmless
});
