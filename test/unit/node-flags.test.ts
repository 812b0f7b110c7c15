import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { RELAYBUS_VERSION } from "../../src/version.js";

const bin = new URL("../../bin/relaybus.js", import.meta.url);

/** The node flags on the `relaybus` command's `#!/usr/bin/env -S node ...` line. */
function shebangFlags(): string[] {
  const first = readFileSync(bin, "utf8").split("\n", 1)[0]!;
  assert.match(first, /^#!\/usr\/bin\/env -S node( |$)/);
  return first.replace(/^#!\/usr\/bin\/env -S node/, "").split(" ").filter((flag) => flag !== "");
}

test("node flags - npm start runs node with the flags the relaybus command's first line gives it", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    scripts: { start: string };
  };
  const start = /^node (.*?) ?bin\/relaybus\.js /.exec(pkg.scripts.start);
  assert.ok(start !== null, `npm start runs node bin/relaybus.js: ${pkg.scripts.start}`);
  const flags = shebangFlags();
  assert.ok(flags.includes("--max-semi-space-size=32"), flags.join(" "));
  assert.deepEqual(start[1]!.split(" ").filter((flag) => flag !== ""), flags);
});

test("node flags - the relaybus command starts through its first line", { skip: !existsSync(new URL("../../dist/src/cli/run.js", import.meta.url)) && "dist/ is not built (npm install builds it)" }, () => {
  const output = execFileSync(bin.pathname, ["--version"], { encoding: "utf8" });
  assert.equal(output.trim(), RELAYBUS_VERSION);
});
