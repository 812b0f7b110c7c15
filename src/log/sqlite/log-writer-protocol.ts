/**
 * The messages between the main thread and the log writer thread. Types only: both sides
 * import them, so a change to one side that the other does not follow fails to compile.
 *
 * Appends travel as parallel arrays, not arrays of objects: the structured clone of a few
 * flat arrays of strings and numbers is cheaper than that of hundreds of small objects, and
 * the parsed CloudEvent never crosses (the main thread keeps it for the ack).
 */
import type { DurabilityMode } from "../../config/defaults.js";

/** What the writer thread is started with (its `workerData`). */
export interface LogWriterConfig {
  /** The log file, migrated already by the main thread. */
  path: string;
  durability: DurabilityMode;
  busyTimeoutMs: number;
  /** Most events in one transaction; a call is never split. */
  groupCommitMaxEvents: number;
  /**
   * The WAL's size past which the writer runs a passive checkpoint of its own between commits,
   * so that the WAL starts again from its beginning (see `log-writer-worker.ts`); also the
   * size the WAL file is cut back to when it does.
   */
  walLimitBytes: number;
}

/**
 * Appends handed over in one turn of the main thread: call `i` holds `counts[i]` events,
 * which come in order in `buses`, `ids`, `jsons`, `sizes` and `units`.
 */
export interface AppendMessage {
  type: "append";
  callIds: number[];
  counts: number[];
  /** When the main thread handed the calls over (its clock): the events' `receivedAtMs`. */
  receivedAtMs: number;
  buses: string[];
  ids: string[];
  jsons: string[];
  sizes: number[];
  units: number[];
}

/** Deletes old events; `keepFrom` pairs give each bus's lowest offset that must stay. */
export interface PruneMessage {
  type: "prune";
  requestId: number;
  cutoffMs: number;
  keepFrom: [bus: string, offset: number][];
  batchSize: number;
}

/** Runs one PRAGMA on the writer's connection (tests, diagnostics). */
export interface PragmaMessage {
  type: "pragma";
  requestId: number;
  pragma: string;
}

/** Commit what is queued, close the connection, end the thread. */
export interface CloseMessage {
  type: "close";
}

/** Main thread → writer. */
export type ToWriter = AppendMessage | PruneMessage | PragmaMessage | CloseMessage;

/** A failure, as it crosses the thread boundary (an Error's class does not). */
export interface WriterError {
  message: string;
  /** `SQLITE_FULL`, `SQLITE_IOERR_WRITE`, ... when SQLite raised it. */
  sqliteCode?: string;
}

/** One transaction committed: `offsets` holds every event's offset, calls in `callIds` order. */
export interface CommittedMessage {
  type: "committed";
  callIds: number[];
  offsets: number[];
}

/** One transaction rolled back: every call in it failed, and its offsets were handed back. */
export interface FailedMessage {
  type: "failed";
  callIds: number[];
  events: number;
  error: WriterError;
}

/** The answer to a prune or pragma request. */
export interface ResultMessage {
  type: "result";
  requestId: number;
  ok: boolean;
  value?: unknown;
  error?: WriterError;
}

/** The writer could not open the log file; it ends after sending this. */
export interface OpenFailedMessage {
  type: "open-failed";
  error: WriterError;
}

/** Writer → main thread. */
export type FromWriter = CommittedMessage | FailedMessage | ResultMessage | OpenFailedMessage;
