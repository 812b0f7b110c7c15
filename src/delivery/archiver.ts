/**
 * The archiver: from a bus's log into its archives. Like the dispatcher, it follows the log
 * from a checkpoint of its own per archive (woken by the log's appends), keeps the events
 * the archive's pattern matches, and stores them with the new checkpoint in one
 * transaction, so an archive has every matching event after its creation exactly once.
 *
 * An archive starts at the bus's end when it is created (as EventBridge's do): earlier
 * events are in the log, and a replay from the log reaches them.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { errorMessage } from "../errors.js";
import type { ArchiveStore, StoredArchive } from "../log/archive-store.js";
import type { LogEngine } from "../log/log-engine.js";
import type { CloudEvent, JsonObject, Logger } from "../types.js";

/** Events read and committed per batch by default. */
export const DEFAULT_ARCHIVE_BATCH_SIZE = 500;

/** Turns an archive's pattern (as written, bus vocabulary allowed) into a test of an event. */
export type ArchivePatternCompiler = (pattern: JsonObject) => (event: CloudEvent) => boolean;

/** Options of {@link createArchiver}. */
export interface ArchiverOptions {
  log: LogEngine;
  archives: ArchiveStore;
  /**
   * Compiles archive patterns. The API checked each pattern when the archive was created;
   * the service passes the rules' compiler, so that `detail-type`/`detail` mean what they
   * mean in rules (delivery does not import rules).
   */
  compilePattern: ArchivePatternCompiler;
  logger: Logger;
  /** Events per read and per commit. Default {@link DEFAULT_ARCHIVE_BATCH_SIZE}. */
  batchSize?: number;
  /** Wait before retrying an archive after a storage failure. Default 1,000 ms. */
  failureBackoffMs?: number;
}

/** A running archiver. */
export interface Archiver {
  /** Reads the archives again (after one was created or deleted) and catches each up. */
  refresh(): void;
  /** Asks for a pass over every archive of `bus` (the log does this on every append). */
  wake(bus: string): void;
  /** Resolves once no archive has a pass running. */
  whenIdle(): Promise<void>;
  /** Stops taking wake-ups and waits for the batches in progress to commit. */
  close(): Promise<void>;
}

interface ArchiveState {
  archive: StoredArchive;
  matches: (event: CloudEvent) => boolean;
  running: Promise<void> | undefined;
  again: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  /** Deleted (no longer listed): its pass stops. */
  gone: boolean;
}

/**
 * Creates and starts an archiver: it lists the archives, subscribes to the log's appends
 * and catches every archive up. One pass per archive runs at a time; archives of one bus
 * read the log each on their own. A storage failure stops the archive's pass and retries it
 * after `failureBackoffMs` (nothing is skipped).
 */
export function createArchiver(options: ArchiverOptions): Archiver {
  const { log, archives, logger } = options;
  const batchSize = options.batchSize ?? DEFAULT_ARCHIVE_BATCH_SIZE;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  /** By archive id. */
  const states = new Map<number, ArchiveState>();
  let closed = false;

  function refresh(): void {
    if (closed) return;
    let listed: StoredArchive[];
    try {
      listed = archives.list();
    } catch (error) {
      logger.error("archive: could not list archives", { error: errorMessage(error) });
      return;
    }
    const ids = new Set(listed.map((a) => a.id));
    for (const [id, state] of states) {
      if (ids.has(id)) continue;
      state.gone = true;
      if (state.retryTimer !== undefined) clearTimeout(state.retryTimer);
      states.delete(id);
    }
    for (const archive of listed) {
      if (states.has(archive.id)) continue;
      let matches: (event: CloudEvent) => boolean;
      try {
        matches =
          archive.pattern === undefined ? () => true : options.compilePattern(archive.pattern);
      } catch (error) {
        // Checked at creation; only a change of the pattern language could get here.
        logger.error("archive: pattern does not compile; the archive is not filled", {
          archive: archive.name,
          error: errorMessage(error),
        });
        continue;
      }
      const state: ArchiveState = {
        archive,
        matches,
        running: undefined,
        again: false,
        retryTimer: undefined,
        gone: false,
      };
      states.set(archive.id, state);
      wakeArchive(state);
    }
  }

  function wake(bus: string): void {
    for (const state of states.values()) if (state.archive.bus === bus) wakeArchive(state);
  }

  function wakeArchive(state: ArchiveState): void {
    if (closed || state.gone) return;
    if (state.running !== undefined) {
      state.again = true;
      return;
    }
    if (state.retryTimer !== undefined) {
      clearTimeout(state.retryTimer);
      state.retryTimer = undefined;
    }
    state.running = pass(state).finally(() => {
      state.running = undefined;
    });
  }

  async function pass(state: ArchiveState): Promise<void> {
    const { archive } = state;
    while (!closed && !state.gone) {
      state.again = false;
      try {
        const events = await log.read(archive.bus, archive.throughOffset, batchSize);
        if (events.length > 0) {
          const kept = events.filter((e) => state.matches(e.event));
          const through = events[events.length - 1]!.offset;
          if (!archives.commitArchived(archive.id, through, kept)) {
            state.gone = true; // deleted meanwhile; refresh() drops it
            return;
          }
          archive.throughOffset = through;
        }
        if (events.length < batchSize && !state.again) return;
      } catch (error) {
        logger.error("archive: pass failed; retrying the archive", {
          archive: archive.name,
          retryInMs: failureBackoffMs,
          error: errorMessage(error),
        });
        if (!closed) {
          state.retryTimer = setTimeout(() => {
            state.retryTimer = undefined;
            wakeArchive(state);
          }, failureBackoffMs);
          state.retryTimer.unref();
        }
        return;
      }
      await yieldToEventLoop();
    }
  }

  async function whenIdle(): Promise<void> {
    for (;;) {
      const running = [...states.values()].map((s) => s.running).filter((p) => p !== undefined);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  const unsubscribe = log.onAppend(wake);
  refresh();

  return {
    refresh,
    wake,
    whenIdle,
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const state of states.values()) {
        if (state.retryTimer !== undefined) clearTimeout(state.retryTimer);
        state.retryTimer = undefined;
      }
      await Promise.all([...states.values()].map((s) => s.running));
    },
  };
}
