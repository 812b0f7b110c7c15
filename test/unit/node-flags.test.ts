import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { relaybusNodeFlags } from "../../bench/bench-server.js";
import { RELAYBUS_VERSION } from "../../src/version.js";

const bin = new URL("../../bin/relaybus.js", import.meta.url);
const built = existsSync(new URL("../../dist/src/cli/run.js", import.meta.url));

/**
 * The node flags on the `relaybus` command's second line, `':' //; exec node FLAGS "$0" "$@"`,
 * as the benchmarks' server reads them (it throws when the line is missing).
 */
function commandFlags(): string[] {
  const [first, second] = readFileSync(bin, "utf8").split("\n", 2);
  assert.equal(first, "#!/bin/sh");
  assert.ok(second?.startsWith("':' //; exec node "), `second line: ${second}`);
  return relaybusNodeFlags();
}

test("node flags - npm start runs node with the flags the relaybus command gives it", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    scripts: { start: string };
  };
  const start = /^node (.*?) ?bin\/relaybus\.js /.exec(pkg.scripts.start);
  assert.ok(start !== null, `npm start runs node bin/relaybus.js: ${pkg.scripts.start}`);
  const flags = commandFlags();
  assert.ok(flags.includes("--max-semi-space-size=32"), flags.join(" "));
  assert.deepEqual(start[1]!.split(" ").filter((flag) => flag !== ""), flags);
});

test("node flags - the relaybus command runs as a program, through sh, and as node's script", { skip: !built && "dist/ is not built (npm install builds it)" }, () => {
  assert.equal(execFileSync(bin.pathname, ["--version"], { encoding: "utf8" }).trim(), RELAYBUS_VERSION);
  assert.equal(execFileSync("sh", [bin.pathname, "--version"], { encoding: "utf8" }).trim(), RELAYBUS_VERSION);
  assert.equal(execFileSync(process.execPath, [bin.pathname, "--version"], { encoding: "utf8" }).trim(), RELAYBUS_VERSION);
});

test("node flags - the command's node gets its flags", { skip: !built && "dist/ is not built (npm install builds it)" }, () => {
  // A module loaded first (NODE_OPTIONS=--import) prints the flags node was started with.
  const probe = new URL("../fixtures/print-exec-argv.mjs", import.meta.url).pathname;
  const output = execFileSync(bin.pathname, ["--version"], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: `--import ${probe}` },
  });
  assert.match(output, /execArgv: .*--max-semi-space-size=32/);
});
