/**
 * The PRAGMAs of every connection Relaybus opens, in one place so the log writer thread and
 * the main thread cannot drift apart. What each setting buys was measured with 640-row
 * commits of 1 KB rows on the target disk (see the report in `log-writer-worker.ts`).
 */
import type Database from "better-sqlite3";
import type { DurabilityMode } from "../../config/defaults.js";

/**
 * Page size of the log file. 16 KB pages took raw appends from 102k to 156k rows/s: a commit
 * of 640 rows writes fewer, fuller pages to the WAL. It only applies to a file that has no
 * table yet, so {@link prepareLogFile} sets it before the first migration.
 */
export const LOG_PAGE_SIZE_BYTES = 16_384;

/** The size the WAL file is truncated to after it restarts: 64 MB. */
export const JOURNAL_SIZE_LIMIT_BYTES = 67_108_864;

/**
 * Sets what must be set before the log file's first table exists (page size), then WAL.
 * Harmless on an existing file: SQLite ignores a page size it can no longer apply.
 */
export function prepareLogFile(db: Database.Database): void {
  db.pragma(`page_size = ${LOG_PAGE_SIZE_BYTES}`);
  useWal(db);
}

/**
 * The log writer's connection. FULL fsyncs the WAL on every commit; NORMAL only at
 * checkpoints (durable against a process crash, not against power loss). Automatic
 * checkpoints are off: one would run inside a commit and delay its acks; the checkpointer
 * thread runs PASSIVE checkpoints beside the writer instead (log-checkpointer-worker.ts).
 */
export function configureLogWriter(db: Database.Database, durability: DurabilityMode, walLimitBytes: number): void {
  useWal(db);
  db.pragma(`synchronous = ${durability === "fsync" ? "FULL" : "NORMAL"}`);
  db.pragma("wal_autocheckpoint = 0");
  commonSettings(db);
  // The WAL file is cut back to this size by the commit that starts it again from its
  // beginning (the writer's connection does that), so that its size tells the writer how
  // long the WAL has gone without starting again.
  db.pragma(`journal_size_limit = ${walLimitBytes}`);
}

/**
 * The main thread's connection to the log file: reads only. `query_only` turns an accidental
 * write into an error instead of a second writer racing the writer thread.
 */
export function configureLogReader(db: Database.Database): void {
  db.pragma("query_only = 1");
  commonSettings(db);
}

/**
 * The state file: WAL and `synchronous=NORMAL`. Its commits carry no ack; see
 * `open-sqlite-storage.ts` for why losing the last ones to a power cut is safe.
 */
export function configureStateFile(db: Database.Database): void {
  useWal(db);
  db.pragma("synchronous = NORMAL");
  commonSettings(db);
}

function useWal(db: Database.Database): void {
  const mode = db.pragma("journal_mode = WAL", { simple: true });
  if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, WAL is needed`);
}

function commonSettings(db: Database.Database): void {
  // After a burst, truncate the WAL back to 64 MB at the next checkpoint rather than
  // keeping its high-water size on disk forever.
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
  // 32 MB of page cache: indexes of recent offsets and due deliveries stay hot.
  db.pragma("cache_size = -32768");
  db.pragma("temp_store = MEMORY");
}
