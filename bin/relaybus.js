#!/usr/bin/env node
// The `relaybus` command. `npm install` compiles the TypeScript sources to dist/ (the
// `prepare` script), so the command starts without a TypeScript runner.
import "../dist/src/cli/run.js";
