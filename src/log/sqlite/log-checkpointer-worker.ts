/**
 * The log checkpointer thread: copies committed WAL pages into the log file with PASSIVE
 * checkpoints, on a connection of its own.
 *
 * Why a thread of its own: a checkpoint run by the writer thread stops commits while it
 * copies (16 MB every second or so at full ingest), and every ack waiting on those commits
 * waits with it: measured, p99 of single-event ingest went from ~18 ms to ~50 ms, and to
 * ~200 ms with random ids. A PASSIVE checkpoint on another connection proceeds beside the
 * writer, which keeps appending to the WAL meanwhile.
 *
 * The WAL restarts from its beginning only once a checkpoint has caught up with every frame;
 * under steady load a single pass ends a little behind, so a pass repeats (briefly) while many
 * frames are left, and the next request starts again.
 */
import { closeSync, fdatasyncSync, openSync } from "node:fs";
import Database from "better-sqlite3";
import { parentPort, workerData } from "node:worker_threads";
import type { CheckpointerConfig, FromCheckpointer, ToCheckpointer } from "./log-checkpointer-protocol.js";

/** Passes per request at most: enough to catch up after a burst, bounded so close stays prompt. */
const MAX_PASSES = 8;
/** Frames (pages) left behind that count as caught up. */
const CAUGHT_UP_FRAMES = 64;
/** Pause between passes, so the writer gets the disk between them. */
const PAUSE_BETWEEN_PASSES_MS = 5;

interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

function run(): void {
  const port = parentPort;
  if (port === null) throw new Error("log-checkpointer-worker must run in a worker thread");
  const config = workerData as CheckpointerConfig;
  const send = (message: FromCheckpointer) => port.postMessage(message);

  let db: Database.Database;
  /** The log file, for syncing the pages a pass copied. */
  let logFd: number;
  try {
    db = new Database(config.path, { timeout: config.busyTimeoutMs });
    // The same durability as the writer: with FULL, the log file is fsynced after a pass.
    db.pragma(`synchronous = ${config.durability === "fsync" ? "FULL" : "NORMAL"}`);
    logFd = openSync(config.path, "r");
  } catch (error) {
    send({ type: "open-failed", message: error instanceof Error ? error.message : String(error) });
    port.close();
    return;
  }

  let requested = false;
  let running = false;
  let closing = false;

  const finish = () => {
    closeSync(logFd);
    db.close();
    port.close();
  };

  const checkpoint = async () => {
    running = true;
    while (requested && !closing) {
      requested = false;
      for (let pass = 0; pass < MAX_PASSES && !closing; pass++) {
        let result: CheckpointResult | undefined;
        try {
          result = (db.pragma("wal_checkpoint(PASSIVE)") as CheckpointResult[])[0];
          // SQLite syncs the log file only at a pass that copied the whole WAL; a partial pass
          // leaves its pages to that sync. Synced here after every pass instead, they are on
          // disk before the writer's own last pass (log-writer-worker.ts), whose sync would
          // else carry everything copied since the WAL started over: 13-48 ms, commits held.
          if (result !== undefined && result.checkpointed > 0) fdatasyncSync(logFd);
        } catch {
          // A failed checkpoint loses nothing (the WAL keeps the pages); the next request retries.
          break;
        }
        if (result === undefined || result.log - result.checkpointed <= CAUGHT_UP_FRAMES) break;
        await new Promise((resolve) => setTimeout(resolve, PAUSE_BETWEEN_PASSES_MS));
      }
    }
    running = false;
    if (closing) finish();
  };

  port.on("message", (message: ToCheckpointer) => {
    if (message.type === "checkpoint") {
      requested = true;
      if (!running) void checkpoint();
    } else {
      closing = true;
      if (!running) finish();
    }
  });
}

run();
