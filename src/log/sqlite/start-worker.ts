/**
 * Starts one of the log's worker threads from a module beside this file, both from `dist/`
 * (compiled `.js`, `npm start`) and from `src/` through tsx (tests, benchmarks).
 *
 * Under tsx this module's own URL ends in `.ts`, and a worker does not inherit tsx's loader
 * hooks on Node 20 (`new Worker("x.ts")` fails with ERR_UNKNOWN_FILE_EXTENSION even under
 * `--import tsx`), so the worker then starts from a one-line bootstrap that registers tsx's
 * CommonJS hooks in the thread and requires the `.ts` entry. The CommonJS hooks, rather than
 * tsx's ESM `register()`, because the latter starts one more hooks thread per worker: first
 * appends waited ~300 ms for the thread instead of ~150 ms (~75 ms from `dist/`). The
 * workers' modules use nothing ESM-only.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

/** Starts the worker whose entry is `<name>.js` (or `<name>.ts` under tsx) beside this file. */
export function startWorker(name: string, workerData: unknown): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) {
    return new Worker(new URL(`./${name}.js`, here), { workerData });
  }
  const entry = fileURLToPath(new URL(`./${name}.ts`, here));
  const tsx = createRequire(here).resolve("tsx/cjs/api");
  const bootstrap = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(entry)});`;
  return new Worker(bootstrap, { eval: true, workerData });
}
