#!/usr/bin/env node
// Runs every test file under test/ with Node's test runner, through tsx.
// Node 20's --test does not expand globs, so the files are found here.
// Usage: node scripts/run-tests.mjs [path-prefix ...]  (default: all of test/)
// A file may take up to 300 s: the fuzz file takes ~80 s alone on the 2-core machine, and two
// files run at once; a hung file still fails, with the timeout named.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith(".test.ts")) found.push(path);
  }
  return found;
}

const prefixes = process.argv.slice(2);
const files = findTests("test")
  .filter((f) => prefixes.length === 0 || prefixes.some((p) => f.startsWith(p)))
  .sort();
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=300000", ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
