/**
 * Opens the embedded storage: two SQLite files in WAL mode in the data directory.
 *
 * - `relaybus.db`, the event log. Its only write connection lives in the log writer thread
 *   (`log-writer-worker.ts`): a commit and its fsync stop the thread that runs them
 *   (better-sqlite3 is synchronous), and on the main thread they took ~48% of its time under
 *   load. The main thread reads the log through its own connection.
 * - `relaybus-state.db`, the catalog (buses, API rules), the delivery state (dispatch
 *   checkpoints, pending deliveries, dead letters) and targets' signing secrets, written on
 *   the main thread through a synchronous API.
 *
 * This departs from DESIGN.md section 5 ("delivery state ... in the same file") for a
 * measured reason: with one file, every delivery-state write would have to go through the
 * writer thread too (one write connection per file), and the state's small synchronous
 * transactions would queue behind the log's group commits or turn async; in its own file it
 * stays a plain synchronous call on the main thread and never waits for the log.
 *
 * The state file runs with `synchronous=NORMAL`: its commits carry no ack to a producer.
 * Losing the last of them to a power cut (a process crash loses nothing in WAL mode) only
 * means the dispatcher re-dispatches from an older checkpoint — the delivery ids are derived
 * from (event, rule, target), so the repeats are skipped as already pending — or a delivery
 * is sent again, which at-least-once delivery allows. The invariant that matters stays
 * inside one file: the checkpoint and the pending deliveries it covers commit in ONE
 * transaction, so a lost commit loses both together, never the deliveries alone.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { DurabilityMode } from "../../config/defaults.js";
import { RelaybusError } from "../../errors.js";
import { silentLogger, systemClock } from "../../types.js";
import type { Clock, Logger } from "../../types.js";
import type { Storage } from "../log-engine.js";
import { configureLogReader, configureStateFile, prepareLogFile } from "./connection-settings.js";
import { LOG_MIGRATIONS, LOG_SCHEMA_VERSION } from "./log-schema.js";
import { applyMigrations, type Migration } from "./migrations.js";
import { createSqliteLog } from "./sqlite-log.js";
import { STATE_MIGRATIONS, STATE_SCHEMA_VERSION } from "./state-schema.js";
import { createStateStores } from "./state-stores.js";

/** The log file's name in the data directory. */
export const LOG_FILE_NAME = "relaybus.db";
/** The state file's name in the data directory. */
export const STATE_FILE_NAME = "relaybus-state.db";

/** Default of {@link SqliteStorageOptions.busyTimeoutMs}. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
/**
 * Default of {@link SqliteStorageOptions.checkpointAfterBytes}: 4 MB of events. What the
 * checkpointer thread leaves behind is what the writer copies itself, commits held, when the
 * WAL passes its limit: after 16 MB that took 13 ms at the median, after 4 MB 4 ms.
 */
export const DEFAULT_CHECKPOINT_AFTER_BYTES = 4_194_304;

/** Default of {@link SqliteStorageOptions.walLimitBytes}: 64 MB. */
export const DEFAULT_WAL_LIMIT_BYTES = 67_108_864;

/** Options of {@link openSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The directory of the two files; created if missing. */
  dataDir: string;
  /**
   * Durability of the log (the state file is always `synchronous=NORMAL`, see above).
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
  /**
   * The checkpointer thread runs a PASSIVE WAL checkpoint each time this many bytes of events
   * were committed since its last request. Default 4 MB ({@link DEFAULT_CHECKPOINT_AFTER_BYTES}).
   */
  checkpointAfterBytes?: number;
  /**
   * Past this size the WAL is checkpointed by the writer thread between commits, so that it
   * starts again from its beginning, and cut back to it. Default 64 MB ({@link DEFAULT_WAL_LIMIT_BYTES}).
   */
  walLimitBytes?: number;
  /**
   * Count delivery attempts, replayed and redriven deliveries into usage, in the
   * transactions that record them (`metering.enabled`). Default true.
   */
  metering?: boolean;
}

/** The SQLite storage: the {@link Storage} seam plus what is specific to the files. */
export interface SqliteStorage extends Storage {
  readonly dataDir: string;
  /** `<dataDir>/relaybus.db`. */
  readonly logPath: string;
  /** `<dataDir>/relaybus-state.db`. */
  readonly statePath: string;
  /**
   * The state file's connection, for parts whose tables live there (their schema goes in
   * `state-schema.ts`) and for tests. Use synchronous calls only; never hold a transaction
   * open across an `await`.
   */
  readonly stateDatabase: Database.Database;
  /** True until `close()` has closed both connections and the writer thread has ended. */
  readonly open: boolean;
  /**
   * Runs one PRAGMA on the log writer's connection, in its thread, and returns its simple
   * result: for tests (`max_page_count` simulates a full disk) and diagnostics. Rejects
   * `ServiceUnavailable` once the writer has stopped.
   */
  logWriterPragma(pragma: string): Promise<unknown>;
}

/**
 * Opens (creating if needed) and migrates both files, starts the log writer thread, and
 * builds the stores. Throws `InvalidConfig` when a file was written by a newer Relaybus, and
 * `ServiceUnavailable` when one cannot be opened. `close()` commits queued appends, ends
 * the thread and releases both files.
 */
export function openSqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const logPath = join(options.dataDir, LOG_FILE_NAME);
  const statePath = join(options.dataDir, STATE_FILE_NAME);
  try {
    mkdirSync(options.dataDir, { recursive: true });
  } catch (error) {
    throw unavailable(`cannot create ${options.dataDir}`, options.dataDir, error);
  }

  // The log file is created and migrated here, on this connection, before the writer
  // thread starts: open then fails synchronously (a newer schema, an unreadable file), and
  // the thread finds a ready file. The connection then stays as the read connection.
  const reader = openFile(
    logPath,
    busyTimeoutMs,
    logger,
    LOG_MIGRATIONS,
    LOG_SCHEMA_VERSION,
    (db) => prepareLogFile(db),
  );
  let state: Database.Database;
  try {
    configureLogReader(reader);
    state = openFile(
      statePath,
      busyTimeoutMs,
      logger,
      STATE_MIGRATIONS,
      STATE_SCHEMA_VERSION,
      (db) => configureStateFile(db),
    );
  } catch (error) {
    reader.close();
    throw error;
  }

  const log = createSqliteLog({
    reader,
    writer: {
      path: logPath,
      durability: options.durability,
      busyTimeoutMs,
      groupCommitMaxEvents: options.groupCommitMaxEvents ?? 2_000,
      walLimitBytes: options.walLimitBytes ?? DEFAULT_WAL_LIMIT_BYTES,
    },
    checkpointer: {
      path: logPath,
      durability: options.durability,
      busyTimeoutMs,
      afterBytes: options.checkpointAfterBytes ?? DEFAULT_CHECKPOINT_AFTER_BYTES,
    },
    clock,
    logger,
  });
  const stores = createStateStores({
    state,
    clock,
    meterUsage: options.metering ?? true,
    logReader: (bus, afterOffset, limit) => log.tallyPublished(bus, afterOffset, limit),
  });
  const { deliveries } = stores;

  let closing: Promise<void> | undefined;
  return {
    dataDir: options.dataDir,
    logPath,
    statePath,
    stateDatabase: state,
    log,
    ...stores,
    get open() {
      return reader.open || state.open || log.writerRunning;
    },
    logWriterPragma: (pragma) => log.writerPragma(pragma),
    close() {
      closing ??= (async () => {
        try {
          await log.close();
        } finally {
          reader.close();
          try {
            deliveries.flushCheckpoints();
          } finally {
            state.close();
          }
        }
      })();
      return closing;
    },
  };
}

/**
 * Opens (creating if needed) and migrates the state file alone, for storages whose log lives
 * elsewhere (JetStream). Throws as {@link openSqliteStorage} does.
 */
export function openStateFile(dataDir: string, logger: Logger, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS): Database.Database {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    throw unavailable(`cannot create ${dataDir}`, dataDir, error);
  }
  return openFile(join(dataDir, STATE_FILE_NAME), busyTimeoutMs, logger, STATE_MIGRATIONS, STATE_SCHEMA_VERSION, (db) =>
    configureStateFile(db),
  );
}

/** Opens, configures and migrates one file; closes it again if any step fails. */
function openFile(
  path: string,
  busyTimeoutMs: number,
  logger: Logger,
  migrations: readonly Migration[],
  version: number,
  configure: (db: Database.Database) => void,
): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: busyTimeoutMs });
  } catch (error) {
    throw unavailable(`cannot open ${path}`, path, error);
  }
  try {
    configure(db);
    const applied = applyMigrations(db, migrations);
    if (applied.length > 0) logger.info("storage migrated", { path, applied, version });
    return db;
  } catch (error) {
    db.close();
    if (error instanceof RelaybusError) throw error;
    throw unavailable(`cannot prepare ${path}`, path, error);
  }
}

function unavailable(what: string, path: string, error: unknown): RelaybusError {
  return new RelaybusError("ServiceUnavailable", `storage unavailable: ${what}: ${String(error)}`, {
    details: { path },
    cause: error,
  });
}
