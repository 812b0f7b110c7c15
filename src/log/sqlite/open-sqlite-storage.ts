/**
 * Opens the embedded storage: one SQLite file in WAL mode holding the event log, the
 * catalog and the delivery state, on one connection. One connection is enough because
 * better-sqlite3 is synchronous and Node runs one thread: transactions follow each other,
 * and WAL lets other processes (the CLI, a backup) read while the service writes.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { DurabilityMode } from "../../config/defaults.js";
import { RelaybusError } from "../../errors.js";
import { silentLogger, systemClock } from "../../types.js";
import type { Clock, Logger } from "../../types.js";
import type { Storage } from "../log-engine.js";
import { applyMigrations, SCHEMA_VERSION } from "./migrations.js";
import { createSqliteCatalog } from "./sqlite-catalog.js";
import { createSqliteDeliveries } from "./sqlite-deliveries.js";
import { createSqliteLog } from "./sqlite-log.js";

/** Options of {@link openSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The database file; its directory is created if missing. `:memory:` works for throwaway use. */
  path: string;
  /**
   * `fsync`: `synchronous=FULL`, every commit is fsynced and an ack survives power loss.
   * `fsync-wal-only`: `synchronous=NORMAL`, an ack survives a process crash, but the last
   * commits may be lost with the machine's power; commits are cheaper.
   */
  durability: DurabilityMode;
  /** Most events in one group commit. Default 2,000. */
  groupCommitMaxEvents?: number;
  /** Time source for `receivedAtMs`, checkpoints and dead letters. Default the wall clock. */
  clock?: Clock;
  /** Default silent. */
  logger?: Logger;
  /** How long a write waits for another process's lock before failing. Default 5,000 ms. */
  busyTimeoutMs?: number;
}

/** The SQLite storage: the {@link Storage} seam plus what is specific to the file. */
export interface SqliteStorage extends Storage {
  /** The database file's path, as given. */
  readonly path: string;
  /**
   * The connection, for parts whose tables live in the same file (their schema goes in
   * `migrations.ts`) and for tests (`PRAGMA max_page_count` simulates a full disk).
   * Use synchronous calls only; never hold a transaction open across an `await`, it would
   * swallow the log's group commits.
   */
  readonly database: Database.Database;
}

/** Default of {@link SqliteStorageOptions.busyTimeoutMs}. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens (creating if needed) and migrates the SQLite file, then builds the stores on it.
 * Throws `InvalidConfig` when the file was written by a newer Relaybus, and
 * `ServiceUnavailable` when it cannot be opened. `close()` commits queued appends and
 * releases the file.
 */
export function openSqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const inMemory = options.path === ":memory:" || options.path === "";

  let db: Database.Database;
  try {
    if (!inMemory) mkdirSync(dirname(options.path), { recursive: true });
    db = new Database(options.path, { timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
  } catch (error) {
    throw new RelaybusError(
      "ServiceUnavailable",
      `storage unavailable: cannot open ${options.path}: ${String(error)}`,
      {
        details: { path: options.path },
        cause: error,
      },
    );
  }

  try {
    configure(db, options.durability, inMemory);
    const applied = applyMigrations(db);
    if (applied.length > 0)
      logger.info("storage migrated", { path: options.path, applied, version: SCHEMA_VERSION });
  } catch (error) {
    db.close();
    if (error instanceof RelaybusError) throw error;
    throw new RelaybusError(
      "ServiceUnavailable",
      `storage unavailable: cannot prepare ${options.path}: ${String(error)}`,
      {
        details: { path: options.path },
        cause: error,
      },
    );
  }

  const log = createSqliteLog({
    db,
    clock,
    logger,
    ...(options.groupCommitMaxEvents === undefined
      ? {}
      : { groupCommitMaxEvents: options.groupCommitMaxEvents }),
  });
  const catalog = createSqliteCatalog(db);
  const deliveries = createSqliteDeliveries({ db, clock });

  let closing: Promise<void> | undefined;
  return {
    path: options.path,
    database: db,
    log,
    catalog,
    deliveries,
    close() {
      closing ??= (async () => {
        await log.close();
        db.close();
      })();
      return closing;
    },
  };
}

function configure(db: Database.Database, durability: DurabilityMode, inMemory: boolean): void {
  if (!inMemory) {
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, WAL is needed`);
  }
  // FULL fsyncs the WAL on every commit; NORMAL only at checkpoints (durable against a
  // process crash, not against power loss).
  db.pragma(`synchronous = ${durability === "fsync" ? "FULL" : "NORMAL"}`);
  // After a burst, truncate the WAL back to 64 MB at the next checkpoint rather than
  // keeping its high-water size on disk forever.
  db.pragma("journal_size_limit = 67108864");
  // 32 MB of page cache: indexes of recent offsets and due deliveries stay hot.
  db.pragma("cache_size = -32768");
  db.pragma("temp_store = MEMORY");
}
