/**
 * One place that turns a SQLite failure into the error callers can act on. A write that
 * fails because the disk is full, the file is unreadable or another process holds the lock
 * is not the caller's fault and may pass: it answers `ServiceUnavailable` (503, retry later).
 */
import { RelaybusError } from "../../errors.js";

/** The SQLite error code (`SQLITE_FULL`, `SQLITE_IOERR_WRITE`, ...) of `error`, if it has one. */
export function sqliteCodeOf(error: unknown): string | undefined {
  if (error instanceof Error && "code" in error && typeof error.code === "string") {
    return error.code.startsWith("SQLITE_") ? error.code : undefined;
  }
  return undefined;
}

/**
 * Wraps a failed storage operation as `ServiceUnavailable`, keeping the SQLite code in
 * `details.sqliteCode` and the original error as `cause`. A `RelaybusError` passes unchanged,
 * so the stores can throw domain errors (`BusAlreadyExists`) from inside a transaction.
 *
 * Every SQLite failure maps to 503, constraint errors included: those mean our own state
 * disagrees with the file (a bug or a second writer), and the caller can do nothing but retry.
 */
export function toStorageError(error: unknown, operation: string): RelaybusError {
  if (error instanceof RelaybusError) return error;
  const sqliteCode = sqliteCodeOf(error);
  const reason = error instanceof Error ? error.message : String(error);
  return new RelaybusError(
    "ServiceUnavailable",
    `storage unavailable: ${operation} failed: ${reason}`,
    {
      details: sqliteCode === undefined ? { operation } : { operation, sqliteCode },
      cause: error,
    },
  );
}

/** Runs a synchronous storage call, turning a SQLite failure into `ServiceUnavailable`. */
export function guardStorage<R>(operation: string, run: () => R): R {
  try {
    return run();
  } catch (error) {
    throw toStorageError(error, operation);
  }
}

/**
 * The `ServiceUnavailable` for a failure reported by the log writer thread, which can send
 * the message and the SQLite code across but not the error object itself.
 */
export function fromWriterError(
  error: { message: string; sqliteCode?: string },
  operation: string,
): RelaybusError {
  return new RelaybusError(
    "ServiceUnavailable",
    `storage unavailable: ${operation} failed: ${error.message}`,
    {
      details:
        error.sqliteCode === undefined
          ? { operation }
          : { operation, sqliteCode: error.sqliteCode },
    },
  );
}
