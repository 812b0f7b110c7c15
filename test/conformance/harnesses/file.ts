/**
 * Conformance harness of the file sink: a JSON-lines file in a fresh temp directory, with
 * failures the file system really answers.
 *
 * - Retryable: the path becomes a symbolic link to /dev/full, whose writes fail with ENOSPC,
 *   exactly as on a full disk. It stays until the harness is next called.
 * - Permanent: the path becomes a FIFO, which cannot be fsynced (EINVAL). This one must heal
 *   by itself once the sink failed on it, with no call in between; so the harness fills the
 *   pipe first, which holds the sink's write in the kernel, watches /proc/self/fd until the
 *   sink has the FIFO open, puts the real file back, and only then drains the pipe. The
 *   sink's write then finishes, its fsync fails, and its next open finds the file again.
 *   Nothing races: the sink cannot get past its write before the file is back.
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { SinkDefinition } from "../../../connectors/index.js";
import { fileSink } from "../../../connectors/file/index.js";
import type { CloudEvent } from "../../../src/types.js";
import type { SinkHarness } from "../connector-harness.js";

/** Events of a JSON-lines file; a line that does not parse (a torn write) is skipped. */
export function readJsonLines(path: string): CloudEvent[] {
  if (!existsSync(path)) return [];
  const events: CloudEvent[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line === "") continue;
    try {
      events.push(JSON.parse(line) as CloudEvent);
    } catch {
      // A torn line from a failed write: its batch was not confirmed.
    }
  }
  return events;
}

export const sinkHarness: SinkHarness = {
  definition: fileSink as SinkDefinition<never>,
  skipReason: async () =>
    process.platform === "linux" && spawnSync("mkfifo", ["--version"]).status === 0
      ? undefined
      : "the file sink's failures need Linux (/dev/full, /proc) and mkfifo",
  async setUp() {
    // The real path: /proc/self/fd names files by it.
    const dir = realpathSync(mkdtempSync(join(tmpdir(), "relaybus-file-sink-")));
    // A directory that does not exist yet: the sink creates it.
    const path = join(dir, "out", "events.jsonl");
    const aside = join(dir, "aside.jsonl");
    /** Undoes the failure in place, if one is. */
    let heal: () => void = () => {};

    const moveAside = () => {
      mkdirSync(dirname(path), { recursive: true });
      if (existsSync(path)) renameSync(path, aside);
    };
    const putBack = () => {
      if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) unlinkSync(path);
      if (existsSync(aside)) renameSync(aside, path);
    };

    const fullDisk = () => {
      moveAside();
      symlinkSync("/dev/full", path);
      heal = () => {
        heal = () => {};
        putBack();
      };
    };

    const unsyncable = () => {
      moveAside();
      const made = spawnSync("mkfifo", [path]);
      if (made.status !== 0) throw new Error(`mkfifo ${path}: ${made.stderr.toString()}`);
      // Read and write ends in one: the sink's open does not wait for a reader.
      const pipe = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
      fill(pipe);
      let fifoGone = false;
      const restore = () => {
        if (fifoGone) return;
        fifoGone = true;
        clearInterval(watch);
        putBack();
        drain(pipe);
      };
      const watch = setInterval(() => {
        if (otherDescriptorOf(path, pipe)) restore();
      }, 2);
      heal = () => {
        heal = () => {};
        restore();
        closeSync(pipe);
      };
    };

    return {
      config: { path },
      invalidConfig: { path: "", format: "xml", fsync: "yes" },
      readBack: async () => {
        heal();
        return readJsonLines(path);
      },
      failNext(retryable) {
        heal();
        if (retryable) fullDisk();
        else unsyncable();
      },
      close: async () => {
        heal();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** Writes into the pipe until it takes no more. */
function fill(fd: number): void {
  const chunk = Buffer.alloc(65_536, 0x20);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
  }
}

/** Reads the pipe empty, which lets a writer waiting for room go on. */
function drain(fd: number): void {
  const buffer = Buffer.alloc(65_536);
  try {
    while (readSync(fd, buffer) > 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
  }
}

/** Whether this process has `path` open through a descriptor other than `own`. */
function otherDescriptorOf(path: string, own: number): boolean {
  for (const fd of readdirSync("/proc/self/fd")) {
    if (Number(fd) === own) continue;
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) return true;
    } catch {
      // Closed between the listing and the lookup.
    }
  }
  return false;
}
