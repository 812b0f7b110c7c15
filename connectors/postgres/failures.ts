/**
 * Whether a PostgreSQL failure may pass on a retry, decided once, here, by SQLSTATE
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html), never by message text.
 */
import { DatabaseError } from "pg";

/**
 * SQLSTATE classes where the server itself says "not now": connection exceptions (08) and
 * insufficient resources (53: too many connections, out of memory, disk full).
 */
const RETRYABLE_CLASSES = new Set(["08", "53"]);

/** Single SQLSTATEs a retry can get past. */
const RETRYABLE_CODES = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "40003", // statement_completion_unknown
  "55P03", // lock_not_available (lock_timeout)
  "57014", // query_canceled (statement_timeout, which the connectors' timeoutMs sets)
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (the server is starting or recovering)
  "57P05", // idle_session_timeout
  "25P03", // idle_in_transaction_session_timeout
  "58000", // system_error
  "58030", // io_error
]);

/**
 * Whether a retry may succeed. An error the server answered with (a SQLSTATE) is retryable
 * only when listed above; everything else it reports (42P01 no such table, 42703 no such
 * column, 42501 no privilege, 28xxx authentication refused, 3D000 no such database, 22xxx
 * bad data, 23xxx constraint violations) needs a change a retry cannot make. An error with no
 * SQLSTATE came from the connection (refused, reset, terminated, timed out): retryable.
 */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof DatabaseError) || error.code === undefined) return true;
  return RETRYABLE_CODES.has(error.code) || RETRYABLE_CLASSES.has(error.code.slice(0, 2));
}

/** The error's message, with its SQLSTATE when the server gave one. */
export function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return error instanceof DatabaseError && error.code !== undefined
    ? `${message} (SQLSTATE ${error.code})`
    : message;
}
