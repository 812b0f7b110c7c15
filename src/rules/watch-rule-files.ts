/**
 * Watches the rules directory and calls back once the files have been quiet for a moment:
 * an editor's save is often several events (write, rename, chmod), and a `git checkout`
 * touches many files, so reloading on each event would load half-written sets.
 */
import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "../types.js";

/** Options of {@link watchRuleFiles}. */
export interface WatchRuleFilesOptions {
  /** Quiet time after the last change before `onChange` runs, in ms. */
  debounceMs: number;
  logger: Logger;
  /** Called once per burst of changes; its promise is awaited before the next call. */
  onChange: () => Promise<unknown>;
}

/**
 * Starts watching `dir` (recursively). Returns a function that stops watching and cancels a
 * pending call. A directory that does not exist cannot be watched: that is logged, and the
 * returned function does nothing (reload by API or SIGHUP once it exists).
 */
export function watchRuleFiles(dir: string, options: WatchRuleFilesOptions): () => void {
  const { debounceMs, logger, onChange } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let pending = false;
  let stopped = false;

  const run = () => {
    timer = undefined;
    if (running !== undefined) {
      // A change during a reload: reload once more when this one ends.
      pending = true;
      return;
    }
    running = onChange()
      .catch((error: unknown) => logger.warn("rule reload failed", { error: String(error) }))
      .finally(() => {
        running = undefined;
        if (pending && !stopped) {
          pending = false;
          schedule();
        }
      });
  };
  const schedule = () => {
    if (stopped) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(run, debounceMs);
  };

  let watcher: FSWatcher;
  try {
    watcher = watch(dir, { recursive: true, persistent: false }, schedule);
  } catch (error) {
    logger.warn("cannot watch the rules directory; reload it by API or SIGHUP", {
      dir,
      error: error instanceof Error ? error.message : String(error),
    });
    return () => undefined;
  }
  watcher.on("error", (error) =>
    logger.warn("watching the rules directory failed", { dir, error: String(error) }),
  );

  return () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    watcher.close();
  };
}
