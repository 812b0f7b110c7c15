/**
 * Starts a worker thread from a module of ours, both from `dist/` (compiled `.js`,
 * `npm start`) and from `src/` through tsx (tests, benchmarks). Used by the log's writer and
 * checkpointer threads and by delivery's sender threads.
 *
 * Under tsx this module's own URL ends in `.ts`, and a worker does not inherit tsx's loader
 * hooks on Node 20 (`new Worker("x.ts")` fails with ERR_UNKNOWN_FILE_EXTENSION even under
 * `--import tsx`), so the worker then starts from a one-line bootstrap that registers tsx's
 * CommonJS hooks in the thread and requires the `.ts` entry. The CommonJS hooks, rather than
 * tsx's ESM `register()`, because the latter starts one more hooks thread per worker: first
 * appends waited ~300 ms for the thread instead of ~150 ms (~75 ms from `dist/`). So the
 * workers' modules must use nothing ESM-only (no `import.meta`, no top-level `await`).
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * Starts the worker whose entry is `entry` plus `.js` (or `.ts` under tsx), with `workerData`
 * (structured-cloned). `entry` is resolved by the caller against its own URL and has no
 * extension: `startWorker(new URL("./log-writer-worker", import.meta.url), config)`. Which
 * extension follows from this module's own: `src/` and `dist/src/` are compiled alike.
 */
export function startWorker(entry: URL, workerData: unknown): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) {
    return new Worker(new URL(`${entry.href}.js`), { workerData });
  }
  const file = fileURLToPath(new URL(`${entry.href}.ts`));
  const tsx = createRequire(here).resolve("tsx/cjs/api");
  const bootstrap = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(file)});`;
  return new Worker(bootstrap, { eval: true, workerData });
}
