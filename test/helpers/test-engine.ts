/**
 * The log engine the tests run Relaybus on: `RELAYBUS_TEST_LOG_ENGINE` (`sqlite` or
 * `jetstream`; unset means `sqlite`). `scripts/run-tests.mjs` runs the whole suite on sqlite,
 * then a named list of integration files again with `jetstream` against the machine's NATS
 * server (127.0.0.1:4222).
 *
 * On jetstream every service gets a stream prefix of its own, derived from its directory, so
 * that a test reopening a directory sees the same log again, and tests never see each other's
 * streams. Who deletes those streams:
 * - a service in a directory of its own (the helper made it): its `close()`;
 * - a service in a directory the test passed (it may be reopened by a later start): this
 *   module, once every test of the file has ended (a root-level `after` hook);
 * - a file killed before its hooks ran leaks its streams; `run-tests.mjs` deletes test
 *   streams older than an hour before its jetstream pass.
 *
 * Tests that open a storage directly (`openSqliteStorage`) stay on sqlite whatever this says.
 */
import { createHash } from "node:crypto";
import { after } from "node:test";
import { connect } from "nats";
import { LOG_ENGINES, type LogEngineName } from "../../src/config/defaults.js";

/** The NATS server the jetstream runs use: the machine's own (`local-services.ts`). */
export const TEST_NATS_URL = "nats://127.0.0.1:4222";

/** Test stream prefixes: `TS` and 10 hex digits; `run-tests.mjs` sweeps stale ones by this shape. */
const PREFIX_LETTERS = "TS";

function parseTestEngine(value: string | undefined): LogEngineName {
  if (value === undefined || value === "") return "sqlite";
  if ((LOG_ENGINES as readonly string[]).includes(value)) return value as LogEngineName;
  throw new Error(`RELAYBUS_TEST_LOG_ENGINE: expected one of ${LOG_ENGINES.join(", ")}, got ${JSON.stringify(value)}`);
}

/** The engine of this test run. */
export const testLogEngine: LogEngineName = parseTestEngine(process.env.RELAYBUS_TEST_LOG_ENGINE);

/**
 * The stream prefix of a service in `dir`: the same directory always gives the same prefix
 * (a restart sees its log), a fresh temp directory a fresh one.
 */
export function testStreamPrefix(dir: string): string {
  return `${PREFIX_LETTERS}${createHash("sha256").update(dir).digest("hex").slice(0, 10)}`;
}

/** True for the streams of a prefix: `<prefix>_…`, and its buckets' `KV_<prefix>_…`, `OBJ_<prefix>_…`. */
export function isStreamOfPrefix(stream: string, prefix: string): boolean {
  return stream.replace(/^(KV|OBJ)_/, "").startsWith(`${prefix}_`);
}

/** Deletes every stream of a prefix: the bus logs and the key-value buckets (state, leases, ...). */
export async function deleteTestStreams(prefix: string): Promise<void> {
  const connection = await connect({ servers: TEST_NATS_URL });
  try {
    const jsm = await connection.jetstreamManager();
    for await (const name of jsm.streams.names()) {
      if (isStreamOfPrefix(name, prefix)) await jsm.streams.delete(name);
    }
  } finally {
    await connection.close();
  }
}

/** Prefixes this process used whose streams are not deleted yet. */
const undeleted = new Set<string>();

/** Records that a service uses `prefix`, so that its streams are deleted at the end of the file. */
export function rememberTestStreams(prefix: string): void {
  undeleted.add(prefix);
}

/** Deletes a prefix's streams now (its service is closed and its directory gone). */
export async function forgetTestStreams(prefix: string): Promise<void> {
  await deleteTestStreams(prefix);
  undeleted.delete(prefix);
}

// Registered while the test file loads, so the hook belongs to the root test and runs after
// the last test of the file, whatever its outcome.
if (testLogEngine === "jetstream") {
  after(async () => {
    for (const prefix of [...undeleted]) await forgetTestStreams(prefix);
  });
}
