#!/usr/bin/env node
// Runs every test file under test/ with Node's test runner, through tsx.
// Node 20's --test does not expand globs, so the files are found here.
// Usage: node scripts/run-tests.mjs [path-prefix ...]  (default: all of test/)
// A file may take up to 300 s: the fuzz file takes ~80 s alone on the 2-core machine, and two
// files run at once; a hung file still fails, with the timeout named.
//
// Two passes: the files on the default log engine (sqlite), then the integration tests of
// ingest, rules, delivery and metering (JETSTREAM_FILES, those among the chosen files) again on
// the JetStream engine, against the NATS server on 127.0.0.1:4222 (RELAYBUS_TEST_LOG_ENGINE,
// read by test/helpers/test-engine.ts). The second pass is skipped, saying why, when that
// server does not answer. With RELAYBUS_TEST_LOG_ENGINE set, one pass runs on that engine.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";

/** The files of the second pass: they start Relaybus through test/helpers/service.ts. */
const JETSTREAM_FILES = [
  // ingest
  "test/integration/sdk-clients.test.ts",
  "test/integration/limits.test.ts",
  // rules
  "test/integration/control-plane.test.ts",
  "test/integration/rules-dry-run.test.ts",
  // delivery
  "test/integration/end-to-end.test.ts",
  "test/integration/delivery-acceptance.test.ts",
  "test/integration/dead-letters.test.ts",
  "test/integration/event-trace.test.ts",
  "test/integration/delivery-signing.test.ts",
  "test/integration/delivery-connections.test.ts",
  "test/integration/target-states-delivery.test.ts",
  // metering
  "test/integration/metering.test.ts",
  "test/integration/metering-property.test.ts",
];
const NATS = { host: "127.0.0.1", port: 4222 };
/** Test streams older than this are leftovers of a killed run (a file may take 300 s at most). */
const STALE_TEST_STREAM_MS = 3_600_000;

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith(".test.ts")) found.push(path);
  }
  return found;
}

/** Runs the files through node:test on one log engine; true when every test passed. */
function runPass(files, engine) {
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=300000", ...files],
    { stdio: "inherit", env: { ...process.env, RELAYBUS_TEST_LOG_ENGINE: engine } },
  );
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`# ${engine} pass: ${files.length} files in ${seconds} s, exit status ${result.status ?? result.signal}`);
  return result.status === 0;
}

function answers({ host, port }, timeoutMs = 1_000) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Deletes the streams of test prefixes (test-engine.ts: `TS` + 10 hex) a killed run left. */
async function deleteStaleTestStreams() {
  const { connect: connectNats } = await import("nats");
  const connection = await connectNats({ servers: `nats://${NATS.host}:${NATS.port}` });
  try {
    const jsm = await connection.jetstreamManager();
    const stale = [];
    for await (const info of jsm.streams.list()) {
      const name = info.config.name;
      if (/^(KV_|OBJ_)?TS[0-9a-f]{10}_/.test(name) && Date.now() - Date.parse(info.created) > STALE_TEST_STREAM_MS)
        stale.push(name);
    }
    for (const name of stale) await jsm.streams.delete(name);
    if (stale.length > 0) console.log(`# deleted ${stale.length} test streams left over by an earlier run`);
  } finally {
    await connection.close();
  }
}

const prefixes = process.argv.slice(2);
const files = findTests("test")
  .filter((f) => prefixes.length === 0 || prefixes.some((p) => f.startsWith(p)))
  .sort();
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}

const chosenEngine = process.env.RELAYBUS_TEST_LOG_ENGINE;
if (chosenEngine !== undefined && chosenEngine !== "") process.exit(runPass(files, chosenEngine) ? 0 : 1);

let passed = runPass(files, "sqlite");
const jetstreamFiles = files.filter((f) => JETSTREAM_FILES.includes(f));
if (jetstreamFiles.length > 0) {
  if (await answers(NATS)) {
    await deleteStaleTestStreams().catch((error) => console.log(`# could not sweep old test streams: ${error}`));
    passed = runPass(jetstreamFiles, "jetstream") && passed;
  } else {
    console.log(
      `# jetstream pass skipped: no NATS server answers on ${NATS.host}:${NATS.port} ` +
        `(${jetstreamFiles.length} files ran on sqlite only)`,
    );
  }
}
process.exit(passed ? 0 : 1);
