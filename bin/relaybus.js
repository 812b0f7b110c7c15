#!/usr/bin/env node
// The `relaybus` command. The TypeScript sources are compiled to dist/ by `npm install`
// (the `prepare` script), so the command starts without a TypeScript runner.
import { runCli } from "../dist/src/cli/main.js";

runCli(process.argv.slice(2)).catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
