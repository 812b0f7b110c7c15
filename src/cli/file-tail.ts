/** The last lines of a log file, for error messages about a child process that died. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** How much of the file's end is read at most: enough for the lines asked, bounded for huge logs. */
const MAX_TAIL_BYTES = 64 * 1024;

/**
 * The last `lines` lines of the file at `path` (fewer if it is shorter), or a note saying it
 * could not be read: this runs while reporting another failure, so it never throws.
 */
export function readFileTail(path: string, lines = 30): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    const length = Math.min(size, MAX_TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const text = buffer.toString("utf8").replace(/\n+$/, "");
    return text.split("\n").slice(-lines).join("\n");
  } catch (error) {
    return `(could not read ${path}: ${error instanceof Error ? error.message : String(error)})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
