#!/bin/sh
':' //; exec node --max-semi-space-size=32 "$0" "$@"
// The `relaybus` command. `npm install` compiles the TypeScript sources to dist/ (the
// `prepare` script), so the command starts without a TypeScript runner.
//
// The first two lines are read by sh and by JavaScript alike: sh runs the second, which
// replaces it with node, given the flags there, on this same file; node skips the first (a
// hashbang) and reads the second as a string and a comment. (`#!/usr/bin/env -S node FLAGS`
// would say it in one line, but BusyBox's env, Alpine's, has no -S.)
//
// --max-semi-space-size=32 (MB; Node's default is 16): under load the server allocates
// ~10 KB an event and keeps each one until up to ~1,700 later ones have come (640 in the
// 64 requests in flight, then the log's 1,024-event in-memory tail). With 16 MB semi-spaces
// young-generation GCs come about that often, so in 3 of 11 runs of `npm run bench:ingest --
// --only "10 entries"` every event was promoted to the old generation (1.0 to 1.5 GB in
// 10 s, and a mark-compact a second); with 32 MB, 16 to 17 MB and one mark-compact in every
// run. See the README's ingest section. `npm start` passes the same flags, and the
// benchmarks' server reads them from the second line (bench/bench-server.ts); started any
// other way, give them to node or put them in NODE_OPTIONS.
import "../dist/src/cli/run.js";
