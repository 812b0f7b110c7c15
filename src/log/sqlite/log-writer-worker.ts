/**
 * The log writer thread (a `node:worker_threads` worker). It owns the only connection that
 * writes the log file, so SQLite commits and their fsyncs, which stop the calling thread
 * (better-sqlite3 is synchronous), run on the second core while the main thread parses the
 * next requests. Measured before this split: ~48% of the main thread sat in commits.
 *
 * Each turn it commits the calls that arrived (possibly from several main-thread turns) in
 * one transaction, split at `groupCommitMaxEvents`, and answers with one message per
 * transaction: the offsets, or the failure. Retention runs here too, in batches between
 * commits. Automatic checkpoints, which run inside a commit, are off: the checkpointer thread
 * copies the WAL into the log file beside the writer (`log-checkpointer-worker.ts`).
 *
 * One checkpoint runs here, after a commit's answer is sent (it delays the next batch, never
 * an ack that is ready): when the WAL has grown past `walLimitBytes`. The WAL starts again
 * from its beginning only at a commit that finds every frame copied, and a checkpoint beside
 * a writer that never pauses always ends a few frames short: under nonstop ingest the WAL grew
 * without end (7 GB after 45 s of the ingest bench, reads and commits slowing with it). A
 * passive checkpoint here, with no commit running, copies those last frames (the checkpointer
 * thread copied the rest, and synced it: see its file), and the next commit starts the WAL
 * again. It holds the next commit 4 ms at the median, 7 ms at most (ingest bench, 10
 * entries). Blocking checkpoints (RESTART, TRUNCATE) were tried instead and held the writer
 * 30-420 ms waiting for readers.
 *
 * Started by `log-writer-thread.ts`; speaks `log-writer-protocol.ts`.
 */
import { statSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { createGroupCommitter } from "./group-commit.js";
import { configureLogWriter } from "./connection-settings.js";
import { createLogWriter, type QueuedCall } from "./log-writer.js";
import type {
  AppendMessage,
  FromWriter,
  LogWriterConfig,
  PruneMessage,
  ToWriter,
  WriterError,
} from "./log-writer-protocol.js";
import { sqliteCodeOf } from "./storage-error.js";

function toWriterError(error: unknown): WriterError {
  const message = error instanceof Error ? error.message : String(error);
  const sqliteCode = sqliteCodeOf(error);
  return sqliteCode === undefined ? { message } : { message, sqliteCode };
}

function run(): void {
  const port = parentPort;
  if (port === null) throw new Error("log-writer-worker.ts runs as a worker thread only");
  const config = workerData as LogWriterConfig;
  const send = (message: FromWriter) => port.postMessage(message);
  /** Answers a request with an error. */
  const fail = (requestId: number, error: unknown) =>
    send({ type: "result", requestId, ok: false, error: toWriterError(error) });
  /** Answers a request with what `compute` returns, or with the error it throws. */
  const answer = (requestId: number, compute: () => unknown) => {
    try {
      send({ type: "result", requestId, ok: true, value: compute() });
    } catch (error) {
      fail(requestId, error);
    }
  };

  let db: Database.Database;
  try {
    db = new Database(config.path, { timeout: config.busyTimeoutMs });
    configureLogWriter(db, config.durability, config.walLimitBytes);
  } catch (error) {
    send({ type: "open-failed", error: toWriterError(error) });
    port.close();
    return;
  }
  const writer = createLogWriter(db);
  const walPath = `${config.path}-wal`;
  /** See the file's comment: the WAL past its limit is checkpointed here, between commits. */
  const keepWalWithinLimit = () => {
    let walBytes: number;
    try {
      walBytes = statSync(walPath).size;
    } catch {
      return; // no WAL file (yet)
    }
    if (walBytes <= config.walLimitBytes) return;
    try {
      // Passive: it never waits. Busy (the checkpointer thread is in a pass, a reader holds
      // old frames) it copies what it can, and the next commit tries again.
      db.pragma("wal_checkpoint(PASSIVE)");
    } catch {
      // A failed checkpoint loses nothing (the WAL keeps the pages); the next commit retries.
    }
  };
  const committer = createGroupCommitter<QueuedCall>({
    maxItems: config.groupCommitMaxEvents,
    sizeOf: (call) => call.count,
    commit(batch) {
      const callIds = batch.map((call) => call.callId);
      try {
        const offsets = writer.commit(batch);
        send({ type: "committed", callIds, offsets });
      } catch (error) {
        const events = batch.reduce((n, call) => n + call.count, 0);
        send({ type: "failed", callIds, events, error: toWriterError(error) });
      }
      keepWalWithinLimit();
    },
  });

  let closing = false;
  let pruning: Promise<void> = Promise.resolve();

  const queueAppend = (message: AppendMessage) => {
    let start = 0;
    message.callIds.forEach((callId, index) => {
      const count = message.counts[index] ?? 0;
      committer.submit({ callId, message, start, count });
      start += count;
    });
  };

  const prune = async (message: PruneMessage) => {
    let deleted = 0;
    try {
      for (const [bus, keepFrom] of message.keepFrom) {
        for (;;) {
          if (closing) break;
          const batch = writer.pruneBatch(bus, message.cutoffMs, keepFrom, message.batchSize);
          deleted += batch.deleted;
          if (!batch.more) break;
          // Yield between batches: appends queued meanwhile commit before the next delete.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      answer(message.requestId, () => deleted);
    } catch (error) {
      fail(message.requestId, error);
    }
  };

  const close = async () => {
    closing = true;
    committer.drain();
    await pruning;
    db.close();
    port.close();
  };

  port.on("message", (message: ToWriter) => {
    switch (message.type) {
      case "append":
        queueAppend(message);
        break;
      case "prune":
        pruning = pruning.then(() => prune(message));
        break;
      case "pragma":
        answer(message.requestId, () => db.pragma(message.pragma, { simple: true }));
        break;
      case "close":
        void close();
        break;
    }
  });
}

run();
