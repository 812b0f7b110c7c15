/**
 * The file sink's one place that decides whether a file-system failure may go away on a
 * retry. Codes a retry can outlast (a full disk that gets cleaned up, an I/O hiccup, a busy
 * resource) are retryable; codes that only an operator can fix (permissions, a directory where
 * the file should be, a read-only mount) are not. Retryable are ENOSPC, EDQUOT, EIO, EAGAIN,
 * EBUSY, EMFILE, ENFILE, EPIPE and every code not listed as permanent below: for an unknown
 * code the stream retries with backoff before it gives up, which costs less than failing a
 * stream for a passing fault.
 */
import { SinkError } from "../connector.js";

/** Fault codes a retry cannot fix, with the fix to name in the message. */
const PERMANENT_CODES: ReadonlyMap<string, string> = new Map(
  Object.entries({
    EACCES: "give the Relaybus process write access to the file and its directory",
    EPERM: "give the Relaybus process write access to the file and its directory",
    EROFS: "the file system is mounted read-only; choose a writable path",
    EISDIR: "the path names a directory; point `path` at a file",
    ENOTDIR: "a part of the path is a file, not a directory",
    ENAMETOOLONG: "shorten `path`",
    ELOOP: "the path runs into a loop of symbolic links",
    EFBIG: "the file reached the largest size allowed; set `maxFileBytes` to rotate it",
    ENXIO: "the path names a device or socket that cannot be written",
    // fsync(2) answers EINVAL for pipes, sockets and most devices.
    EINVAL:
      "the path is not a regular file and cannot be fsynced; set `fsync: false` to write to a pipe or device",
  }),
);

/** Turns a failed file-system call into a {@link SinkError} that says whether a retry may help. */
export function classifyFileError(error: unknown, path: string, operation: string): SinkError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = (error as Error | undefined)?.message ?? String(error);
  const fix = code === undefined ? undefined : PERMANENT_CODES.get(code);
  if (fix !== undefined) {
    return new SinkError(`file ${path}: ${operation} failed (${code}): ${fix}`, {
      retryable: false,
      cause: error,
    });
  }
  return new SinkError(`file ${path}: ${operation} failed: ${reason}`, {
    retryable: true,
    cause: error,
  });
}
