/**
 * Where the benchmarks find the repository's files and modules, whether they run compiled
 * (`npm run bench:*`: `scripts/bench.mjs` builds src/, connectors/ and bench/ into
 * dist-bench/ and runs the JavaScript, as users run Relaybus's build) or from the sources
 * through tsx (`npx tsx bench/NAME.ts`). A process a benchmark starts (the server, a
 * receiver) runs the same way as the benchmark itself.
 */
import { fileURLToPath } from "node:url";

/** True when this module runs from dist-bench/ (compiled by tsc), false under tsx. */
export const COMPILED = import.meta.url.endsWith(".js");

/** The repository's root directory: files that are not compiled (bin/, bench/*.mjs) are here. */
export const REPO_ROOT = fileURLToPath(new URL(COMPILED ? "../../" : "../", import.meta.url));

/** Where the running copy of src/, connectors/ and bench/ is: dist-bench/ or the root. */
const CODE_ROOT = new URL("../", import.meta.url);

/**
 * The file of one of the repository's TypeScript modules as this benchmark runs it, from its
 * path without extension (`"src/cli/run"`): the compiled `.js`, or the `.ts` under tsx.
 */
export function modulePath(pathFromRoot: string): string {
  return fileURLToPath(new URL(`${pathFromRoot}.${COMPILED ? "js" : "ts"}`, CODE_ROOT));
}

/** The node flags that module needs to run: none compiled, tsx's loader otherwise. */
export const MODULE_EXEC_ARGV: readonly string[] = COMPILED ? [] : ["--import", "tsx"];
