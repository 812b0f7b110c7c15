/**
 * Runs a benchmark on compiled code, as users run Relaybus (`npm start` and the `relaybus`
 * command run the tsc build in dist/, not the sources):
 *
 *     node scripts/bench.mjs [NODE_FLAGS...] bench/NAME.ts [ARGS...]
 *
 * compiles src/, connectors/ and bench/ to dist-bench/ with tsc (`tsconfig.bench.json`,
 * incremental: a few seconds when nothing changed), then runs dist-bench/bench/NAME.js with
 * node, NODE_FLAGS and ARGS. The `npm run bench:*` scripts go through here.
 *
 * Why not tsx, which runs the sources: it compiles with esbuild's `keepNames`, which wraps
 * every function it creates in a `__name(fn, "name")` call (an `Object.defineProperty`), so
 * code that makes closures per call pays for it, and the build does not: a pattern over an
 * array of objects matched at 0.47 M/s under tsx and 0.94 M/s compiled, and the server took
 * 5-7% more 10-entry PutEvents/s compiled. `npx tsx bench/NAME.ts` still works for a quick try.
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const argv = process.argv.slice(2);
const at = argv.findIndex((arg) => arg.endsWith(".ts"));
if (at < 0) {
  console.error("usage: node scripts/bench.mjs [NODE_FLAGS...] bench/NAME.ts [ARGS...]");
  process.exit(2);
}
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const build = spawnSync(process.execPath, [tsc, "-p", "tsconfig.bench.json"], { cwd: root, stdio: "inherit" });
if (build.status !== 0) {
  console.error("bench: the TypeScript build (tsc -p tsconfig.bench.json) failed; nothing was measured");
  process.exit(1);
}
const compiled = `${root}dist-bench/${argv[at].replace(/^\.\//, "").replace(/\.ts$/, ".js")}`;
const run = spawnSync(process.execPath, [...argv.slice(0, at), compiled, ...argv.slice(at + 1)], {
  stdio: "inherit",
});
process.exit(run.status ?? 1);
