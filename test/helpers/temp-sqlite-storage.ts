/**
 * SQLite storages in a temp directory for a test: `open` opens one (again) on the same data
 * directory; after the test every storage opened is closed, checked closed, and the directory
 * removed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { openSqliteStorage, type SqliteStorage, type SqliteStorageOptions } from "../../src/log/sqlite/index.js";

export function tempSqliteStorage(t: TestContext, dirPrefix = "relaybus-log-") {
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const dataDir = join(dir, "data");
  const opened: SqliteStorage[] = [];
  t.after(async () => {
    for (const storage of opened) await storage.close();
    for (const storage of opened) assert.equal(storage.open, false, "storage left open");
    rmSync(dir, { recursive: true, force: true });
  });
  const open = (options: Partial<SqliteStorageOptions> = {}): SqliteStorage => {
    const storage = openSqliteStorage({ dataDir, durability: "fsync", ...options });
    opened.push(storage);
    return storage;
  };
  return { dataDir, open };
}
