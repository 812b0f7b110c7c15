/** The embedded storage: event log, catalog and delivery state in one SQLite file. */
export { openSqliteStorage, DEFAULT_BUSY_TIMEOUT_MS } from "./open-sqlite-storage.js";
export type { SqliteStorage, SqliteStorageOptions } from "./open-sqlite-storage.js";
export { applyMigrations, MIGRATIONS, SCHEMA_VERSION } from "./migrations.js";
export type { Migration } from "./migrations.js";
