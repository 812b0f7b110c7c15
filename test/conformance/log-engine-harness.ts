/**
 * The log engines the `LogEngine` conformance test runs against (log-engine.test.ts), each on
 * real parts: the embedded SQLite storage in a temp directory, and the JetStream log on the
 * local nats-server under a random stream prefix. Every engine a test opens is closed after
 * it, and what it left is removed: the temp directory, or the prefix's streams (checked gone).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import { connect } from "nats";
import { tempSqliteStorage } from "../helpers/temp-sqlite-storage.js";
import { openJetStreamLog, type JetStreamLog } from "../../src/log/jetstream/index.js";
import type { LogEngine } from "../../src/log/log-engine.js";
import type { SqliteStorage } from "../../src/log/sqlite/index.js";
import type { Clock } from "../../src/types.js";
import { LOCAL_SERVICES, requireService } from "../helpers/local-services.js";
import { assertNothingOpen } from "../helpers/open-handles.js";

/** Where the engines' documented semantics differ; the tests branch on these, never on names. */
export interface LogEngineCapabilities {
  /**
   * An event whose CloudEvent id was already appended to the same bus (within the duplicate
   * window) is stored once, and `append` resolves with it as first stored. Without: stored
   * again, under a new offset.
   */
  deduplicatesEventIds: boolean;
  /**
   * Every append call that stores events is a commit of its own (no group commit), so
   * `stats().commits` counts those calls exactly. Without: concurrent calls may share one.
   */
  commitPerAppend: boolean;
}

export interface OpenLogOptions {
  /** The engine's clock, which stamps `receivedAtMs`. Default the wall clock. */
  clock?: Clock;
}

export interface LogEngineHarness {
  /** Shown in the test names: `log engine [<name>] - ...`. */
  name: string;
  capabilities: LogEngineCapabilities;
  /** Why this engine's tests are skipped on this machine (its server cannot be reached), if they are. */
  skipReason?(): Promise<string | undefined>;
  /** A new engine on a place of its own (empty); closed and cleaned up after `t`. */
  open(t: TestContext, options?: OpenLogOptions): Promise<LogEngine>;
  /**
   * Another engine on the place `previous` uses (same data dir, same stream prefix), as a
   * restarted process opens it. The test closes `previous` first.
   */
  reopen?(t: TestContext, previous: LogEngine, options?: OpenLogOptions): Promise<LogEngine>;
}

/** The embedded default: `openSqliteStorage(...).log`; the whole storage is closed after. */
const sqliteHarness: LogEngineHarness = (() => {
  const places = new WeakMap<LogEngine, { storage: SqliteStorage; open(options: OpenLogOptions): LogEngine }>();
  return {
    name: "sqlite",
    capabilities: { deduplicatesEventIds: false, commitPerAppend: false },
    async open(t, options = {}) {
      const storages = tempSqliteStorage(t, "relaybus-log-conformance-");
      const open = (openOptions: OpenLogOptions): LogEngine => {
        const storage = storages.open(openOptions.clock === undefined ? {} : { clock: openOptions.clock });
        places.set(storage.log, { storage, open });
        return storage.log;
      };
      return open(options);
    },
    async reopen(_t, previous, options = {}) {
      const place = places.get(previous);
      assert.ok(place, "reopen: not an engine this harness opened");
      // The test closed the log; a restarted process has released the state file too.
      await place.storage.close();
      return place.open(options);
    },
  };
})();

/** Names of the JetStream streams on the server whose name holds `prefix`. */
async function streamsOf(prefix: string): Promise<string[]> {
  const nc = await connect({ servers: LOCAL_SERVICES.nats.url });
  try {
    const jsm = await nc.jetstreamManager();
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (name.includes(prefix)) names.push(name);
    return names;
  } finally {
    await nc.close();
  }
}

/**
 * The JetStream log on the local nats-server, under a fresh random stream prefix per test.
 * After the test every engine opened is closed, then an engine on the same prefix destroys
 * its streams (as `relaybus dev` would), and the server is asked that none is left.
 */
const jetstreamHarness: LogEngineHarness = (() => {
  const places = new WeakMap<LogEngine, { open(options: OpenLogOptions): Promise<LogEngine> }>();
  return {
    name: "jetstream",
    capabilities: { deduplicatesEventIds: true, commitPerAppend: true },
    skipReason: () => requireService("nats"),
    async open(t, options = {}) {
      const streamPrefix = `T${randomBytes(6).toString("hex")}`;
      const base = { servers: [LOCAL_SERVICES.nats.url], replicas: 1, streamPrefix, duplicateWindowSeconds: 120, claimSeconds: 30 };
      const opened: JetStreamLog[] = [];
      t.after(async () => {
        for (const log of opened) await log.close();
        const cleaner = await openJetStreamLog(base);
        try {
          await cleaner.destroy();
        } finally {
          await cleaner.close();
        }
        assert.deepEqual(await streamsOf(streamPrefix), [], `streams of prefix ${streamPrefix} left after destroy()`);
        await assertNothingOpen();
      });
      const open = async (openOptions: OpenLogOptions): Promise<LogEngine> => {
        const log = await openJetStreamLog({ ...base, clock: openOptions.clock });
        opened.push(log);
        places.set(log, { open });
        return log;
      };
      return open(options);
    },
    async reopen(_t, previous, options = {}) {
      const place = places.get(previous);
      assert.ok(place, "reopen: not an engine this harness opened");
      return place.open(options);
    },
  };
})();

export const LOG_ENGINE_HARNESSES: readonly LogEngineHarness[] = [sqliteHarness, jetstreamHarness];
