/**
 * The embedded storage: the event log in `relaybus.db`; catalog, delivery state and targets'
 * signing secrets in `relaybus-state.db`.
 */
export {
  openSqliteStorage,
  DEFAULT_BUSY_TIMEOUT_MS,
  DEFAULT_CHECKPOINT_AFTER_BYTES,
  LOG_FILE_NAME,
  STATE_FILE_NAME,
} from "./open-sqlite-storage.js";
export type { SqliteStorage, SqliteStorageOptions } from "./open-sqlite-storage.js";
export { applyMigrations, schemaVersionOf } from "./migrations.js";
export type { Migration } from "./migrations.js";
export { LOG_MIGRATIONS, LOG_SCHEMA_VERSION } from "./log-schema.js";
export { STATE_MIGRATIONS, STATE_SCHEMA_VERSION } from "./state-schema.js";
