/**
 * Appends one batch of lines to a JSON-lines file: open, mend a torn last line, rotate when
 * the file would grow past its limit, write, fsync, close. The file is opened anew for every
 * batch: a batch costs an open and a close beside its fsync, and in return a file that a tool
 * such as logrotate moved away, or that an operator replaced, is picked up by name at once.
 */
import { constants } from "node:fs";
import { mkdir, open, readdir, rename, type FileHandle } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { classifyFileError } from "./classify-file-error.js";

/** How one file is written. */
export interface AppendOptions {
  path: string;
  /** fsync the file (and its directory after a create or rotation) before resolving. */
  fsync: boolean;
  /** Rotate before a batch that would take a non-empty file past this size (bytes). */
  maxFileBytes: number | undefined;
  /**
   * Whether the file may end in half a line: before the sink's first batch (a crash of an
   * earlier process) and after a failed one. After a batch that succeeded it cannot.
   */
  mayBeTorn: boolean;
}

const NEWLINE = 0x0a;

/**
 * Appends `text` (whole lines, each ending in `\n`) to the file. Resolves once the bytes are
 * written and, with `fsync`, on disk. Rejects with a classified SinkError.
 */
export async function appendLines(text: string, options: AppendOptions): Promise<void> {
  const { path } = options;
  const bytes = Buffer.from(text, "utf8");
  let step = "open";
  let opened = await openForAppend(path).catch((error: unknown) => {
    throw classifyFileError(error, path, step);
  });
  try {
    step = "stat";
    const stat = await opened.handle.stat();
    // Pipes and devices (a FIFO, /dev/stdout) have no end to mend and nothing to rotate.
    if (stat.isFile() && stat.size > 0) {
      step = "read the last byte";
      const torn = options.mayBeTorn && (await endsTorn(path, stat.size));
      const rotate =
        options.maxFileBytes !== undefined && stat.size + bytes.length > options.maxFileBytes;
      if (torn) {
        // A crash (or a failed write) left half a line: end it, so that the batch starts on a
        // line of its own and readers see one unparseable line instead of two spoilt ones.
        step = "write";
        await writeAll(opened.handle, Buffer.from("\n"));
      }
      if (rotate) {
        step = "close";
        await opened.handle.close();
        step = "rotate";
        await rotateAway(path);
        step = "open";
        opened = await openForAppend(path);
      }
    }
    step = "write";
    await writeAll(opened.handle, bytes);
    if (options.fsync) {
      step = "fsync";
      await opened.handle.sync();
      if (opened.created) await syncDirectory(dirname(path));
    }
  } catch (error) {
    throw classifyFileError(error, path, step);
  } finally {
    await opened.handle.close().catch(() => {});
  }
}

/** Opens for appending, creating the file (and its missing directories) when it is absent. */
async function openForAppend(path: string): Promise<{ handle: FileHandle; created: boolean }> {
  try {
    return { handle: await open(path, constants.O_WRONLY | constants.O_APPEND), created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(
    path,
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT,
    0o644,
  );
  return { handle, created: true };
}

/** Whether the file's last byte is not a newline. A read of its own: appends open write-only. */
async function endsTorn(path: string, size: number): Promise<boolean> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    return last[0] !== NEWLINE;
  } finally {
    await handle.close();
  }
}

/** write(2) may write less than asked (a disk filling up); write the rest or fail. */
async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Renames the file to `<path>.<n>`, n one past the highest number already there, so rotated
 * files sort by age (`.1` oldest) and a rename never lands on an existing file. Only one
 * rename: no chain of renames that a crash could leave half done.
 */
async function rotateAway(path: string): Promise<void> {
  const directory = dirname(path);
  const prefix = `${basename(path)}.`;
  let highest = 0;
  for (const name of await readdir(directory)) {
    if (!name.startsWith(prefix)) continue;
    const suffix = name.slice(prefix.length);
    if (/^[1-9][0-9]*$/.test(suffix)) highest = Math.max(highest, Number(suffix));
  }
  // The new file is created next; one fsync of the directory after it covers both entries.
  await rename(path, `${path}.${highest + 1}`);
}

/** Makes a created or renamed directory entry durable (the file's own fsync does not). */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
