import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import Database from "better-sqlite3";
import { isRelaybusError } from "../../src/errors.js";
import {
  applyMigrations,
  LOG_FILE_NAME,
  LOG_MIGRATIONS,
  LOG_SCHEMA_VERSION,
  openSqliteStorage,
  STATE_FILE_NAME,
  STATE_MIGRATIONS,
  STATE_SCHEMA_VERSION,
} from "../../src/log/sqlite/index.js";

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

test("migrations - fresh files are brought to the latest version, a second run does nothing", (t) => {
  const dir = tempDir(t);
  const cases = [
    { migrations: LOG_MIGRATIONS, version: LOG_SCHEMA_VERSION, tables: ["events", "log_heads"] },
    {
      migrations: STATE_MIGRATIONS,
      version: STATE_SCHEMA_VERSION,
      tables: [
        "api_keys",
        "archived_events",
        "archives",
        "audit_log",
        "billing_periods",
        "billing_records",
        "buses",
        "cluster_node",
        "connections",
        "dead_letters",
        "deliveries",
        "dispatch_checkpoints",
        "meter_checkpoints",
        "replays",
        "rules",
        "schedule_positions",
        "shared_state_outbox",
        "sqlite_sequence",
        "stream_cu_changes",
        "stream_dead_letters",
        "stream_definitions",
        "stream_runtimes",
        "succeeded_deliveries",
        "target_secrets",
        "target_states",
        "usage_daily",
        "usage_hourly",
      ],
    },
  ];
  for (const [index, { migrations, version, tables }] of cases.entries()) {
    const db = rawDatabase(t, join(dir, `file-${index}.db`));
    assert.deepEqual(
      applyMigrations(db, migrations),
      Array.from({ length: version }, (_, i) => i + 1),
    );
    assert.equal(db.pragma("user_version", { simple: true }), version);
    assert.deepEqual(applyMigrations(db, migrations), []);
    const found = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    assert.deepEqual(found, tables);
  }
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

for (const [file, version] of [
  [LOG_FILE_NAME, LOG_SCHEMA_VERSION],
  [STATE_FILE_NAME, STATE_SCHEMA_VERSION],
] as const) {
  test(`migrations - a ${file} from a newer Relaybus refuses to open, naming both versions`, (t) => {
    const dataDir = tempDir(t);
    const db = new Database(join(dataDir, file));
    db.pragma(`user_version = ${version + 1}`);
    db.close();
    assert.throws(
      () => openSqliteStorage({ dataDir, durability: "fsync" }),
      (error: unknown) =>
        isRelaybusError(error, "InvalidConfig") &&
        error.message.includes(file) &&
        error.message.includes(`schema version ${version + 1}`) &&
        error.message.includes(`only up to ${version}`),
    );
  });
}

test("storage - opening creates the directory and both files, with WAL, 16 KB log pages and the durability asked for", async (t) => {
  const dir = tempDir(t);
  const full = openSqliteStorage({ dataDir: join(dir, "a", "b"), durability: "fsync" });
  const normal = openSqliteStorage({ dataDir: join(dir, "normal"), durability: "fsync-wal-only" });
  try {
    assert.equal(full.logPath, join(dir, "a", "b", "relaybus.db"));
    assert.equal(full.statePath, join(dir, "a", "b", "relaybus-state.db"));
    assert.ok(existsSync(full.logPath) && existsSync(full.statePath));
    assert.equal(await full.logWriterPragma("journal_mode"), "wal");
    assert.equal(await full.logWriterPragma("page_size"), 16_384);
    assert.equal(await full.logWriterPragma("synchronous"), 2, "FULL on the log");
    assert.equal(await normal.logWriterPragma("synchronous"), 1, "NORMAL on the log");
    assert.equal(
      await full.logWriterPragma("wal_autocheckpoint"),
      0,
      "the writer checkpoints itself",
    );
    assert.ok(((await full.logWriterPragma("busy_timeout")) as number) > 0);
    for (const storage of [full, normal]) {
      assert.equal(storage.stateDatabase.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(
        storage.stateDatabase.pragma("synchronous", { simple: true }),
        1,
        "NORMAL on the state",
      );
      assert.ok((storage.stateDatabase.pragma("busy_timeout", { simple: true }) as number) > 0);
    }
  } finally {
    await full.close();
    await normal.close();
  }
  assert.equal(full.open, false, "connections closed and the writer thread ended");
  assert.equal(normal.open, false);
  await full.close(); // closing twice is harmless
  await assert.rejects(full.logWriterPragma("page_count"), (error: unknown) =>
    isRelaybusError(error, "ServiceUnavailable"),
  );
});

test("migrations - version 9 marks no existing bus as system; new buses may be", async (t) => {
  const dataDir = tempDir(t);
  const db = new Database(join(dataDir, STATE_FILE_NAME));
  applyMigrations(db, STATE_MIGRATIONS.slice(0, 8));
  db.prepare("INSERT INTO buses (name, description, created_at_ms) VALUES ('old', NULL, 1)").run();
  db.close();
  const storage = openSqliteStorage({ dataDir, durability: "fsync-wal-only" });
  try {
    assert.deepEqual(storage.catalog.getBus("old"), { name: "old", createdAtMs: 1 });
    storage.catalog.createBus({ name: "platform", system: true, createdAtMs: 2 });
    assert.deepEqual(storage.catalog.getBus("platform"), { name: "platform", system: true, createdAtMs: 2 });
  } finally {
    await storage.close();
  }
});
