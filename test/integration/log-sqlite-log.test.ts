/**
 * What only the SQLite log does: group commit and its sizing, the writer and checkpointer
 * threads, a full disk, retention in batches. What every log engine does (offsets, reads,
 * findById, retention, reopen, close, onAppend) is tested once for all engines in
 * test/conformance/log-engine.test.ts.
 */
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { tempSqliteStorage } from "../helpers/temp-sqlite-storage.js";
import Database from "better-sqlite3";
import { isRelaybusError } from "../../src/errors.js";
import type { CloudEvent, EventToAppend, JsonValue } from "../../src/types.js";

function makeEvent(bus: string, id: string, data: JsonValue = { n: 1 }): EventToAppend {
  const event: CloudEvent = {
    specversion: "1.0",
    id,
    source: "test.source",
    type: "test.type",
    data,
  };
  const json = JSON.stringify(event);
  const sizeBytes = Buffer.byteLength(json);
  return { bus, event, json, sizeBytes, units: Math.max(1, Math.ceil(sizeBytes / 65_536)) };
}

/** A temp dir per test; every storage opened through `open` is closed and the dir removed after. */
const tempStorage = (t: TestContext) => tempSqliteStorage(t);

test("log - concurrent appends share a handful of commits", async (t) => {
  const { log } = tempStorage(t).open();
  const calls = Array.from({ length: 64 }, (_, i) =>
    log.append([makeEvent(i % 2 ? "a" : "b", `e${i}`)]),
  );
  const results = await Promise.all(calls);
  // The first call goes to the idle writer at once, the rest in chunks of 16 that the writer
  // merges as they queue: between 1 and 5 commits depending on thread timing, never 64.
  assert.ok(log.stats().commits <= 5, `${log.stats().commits} commits for 64 calls`);
  assert.equal(log.stats().committedEvents, 64);
  // Each caller gets its own events back, offsets in call order per bus.
  assert.deepEqual(
    results.filter((_, i) => i % 2 === 1).map((r) => r[0]?.offset),
    Array.from({ length: 32 }, (_, i) => i + 1),
  );
  assert.equal(results[5]?.[0]?.event.id, "e5");
});

test("log - a commit takes at most groupCommitMaxEvents, but never splits one call", async (t) => {
  const { log } = tempStorage(t).open({ groupCommitMaxEvents: 10 });
  const singles = Array.from({ length: 30 }, (_, i) => log.append([makeEvent("a", `s${i}`)]));
  const big = log.append(Array.from({ length: 25 }, (_, i) => makeEvent("a", `b${i}`)));
  await Promise.all([...singles, big]);
  // 30 singles need at least 3 commits of 10 and the 25-event call one of its own; the
  // first single may go alone to the idle writer and the two chunks that follow may each
  // end in a partial commit (see sqlite-log.ts), hence at most 1 + 2 + 3 = 6.
  // The batching rule itself is tested exactly in test/unit/log-group-commit.test.ts.
  const { commits } = log.stats();
  assert.ok(commits >= 4 && commits <= 6, `${commits} commits`);
  assert.deepEqual(
    (await big).map((e) => e.offset),
    Array.from({ length: 25 }, (_, i) => 31 + i),
  );
  assert.equal(await log.count("a"), 55);
});

test("log - a full disk rejects the whole batch with ServiceUnavailable and burns no offsets", async (t) => {
  const storage = tempStorage(t).open();
  const { log } = storage;
  await log.append([makeEvent("orders", "before")]);
  // Cap the log file at its current size (on the writer thread's connection): the next
  // write that needs a new page fails as on a full disk.
  const pages = (await storage.logWriterPragma("page_count")) as number;
  await storage.logWriterPragma(`max_page_count = ${pages}`);

  // One call (one request) is all or nothing: small events that would fit share the fate
  // of the large one beside them.
  const large = makeEvent("orders", "large", { blob: "x".repeat(200_000) });
  const results = await Promise.allSettled([
    log.append([makeEvent("orders", "bystander"), makeEvent("other", "bystander-2"), large]),
  ]);
  for (const result of results) {
    assert.equal(result.status, "rejected");
    assert.ok(isRelaybusError(result.reason, "ServiceUnavailable"), String(result.reason));
    assert.equal(result.reason.details?.["sqliteCode"], "SQLITE_FULL");
  }
  assert.equal(log.stats().failedCommits, 1);
  assert.equal(await log.lastOffset("orders"), 1);
  assert.equal(await log.lastOffset("other"), 0);
  assert.equal(await log.count("orders"), 1);
  assert.equal(await log.findById("orders", "bystander"), undefined);

  // Space comes back: appends succeed and continue from the last committed offset.
  await storage.logWriterPragma("max_page_count = 1073741823");
  const [again] = await log.append([large]);
  assert.equal(again?.offset, 2);
  assert.deepEqual(
    (await log.read("orders", 0, 10)).map((e) => e.event.id),
    ["before", "large"],
  );
});

test("log - retention deletes in batches until done", async (t) => {
  let nowMs = 1_000;
  const { log } = tempStorage(t).open({ clock: { nowMs: () => nowMs } });
  await log.append(Array.from({ length: 1_234 }, (_, i) => makeEvent("a", `e${i}`)));
  nowMs = 2_000;
  await log.append([makeEvent("a", "young")]);
  const appendedMeanwhile = log.append([makeEvent("a", "during")]);
  assert.equal(await log.pruneOlderThan(1_500, () => Number.MAX_SAFE_INTEGER), 1_234);
  assert.equal((await appendedMeanwhile)[0]?.offset, 1_236);
  assert.equal(await log.count("a"), 2);
});

test("log - close ends the writer thread and releases both files", async (t) => {
  const storage = tempStorage(t).open();
  await storage.log.append([makeEvent("a", "1")]);
  assert.equal(storage.open, true);
  await storage.close();
  assert.equal(storage.open, false, "a connection or the writer thread is still open");
  // The last connection to close checkpoints the WAL and deletes it: with the writer's
  // connection left open, the log's WAL would still be there.
  assert.equal(existsSync(`${storage.logPath}-wal`), false, "the log's WAL is still there");
  assert.equal(existsSync(`${storage.statePath}-wal`), false, "the state's WAL is still there");
  const raw = new Database(storage.logPath);
  try {
    assert.equal(raw.prepare("SELECT count(*) FROM events").pluck().get(), 1);
  } finally {
    raw.close();
  }
});

test("log - appends from later turns queue behind a running commit and are acked in order", async (t) => {
  const { log } = tempStorage(t).open();
  const acked: number[] = [];
  const calls: Promise<void>[] = [];
  for (let turn = 0; turn < 20; turn++) {
    calls.push(
      log.append([makeEvent("a", `t${turn}`)]).then(([e]) => void acked.push(e?.offset ?? -1)),
    );
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(calls);
  assert.deepEqual(
    acked,
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  assert.equal(log.stats().committedEvents, 20);
  assert.deepEqual(
    (await log.read("a", 0, 100)).map((e) => e.event.id),
    Array.from({ length: 20 }, (_, i) => `t${i}`),
  );
});

test("log - the checkpointer thread copies the WAL into the log file while appends go on", async (t) => {
  const { dataDir, open } = tempStorage(t);
  const storage = open({ checkpointAfterBytes: 256 * 1024 });
  const logFile = join(dataDir, "relaybus.db");
  const before = statSync(logFile).size;
  // ~4 MB in 40 appends; only a checkpoint writes pages into the log file itself (commits go
  // to the WAL), and the writer no longer runs any.
  for (let i = 0; i < 40; i++) {
    await storage.log.append(
      Array.from({ length: 10 }, (_, k) => makeEvent("orders", `e${i}-${k}`, { blob: "x".repeat(10_000) })),
    );
  }
  const deadline = Date.now() + 5_000;
  while (statSync(logFile).size < before + 3_000_000 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(statSync(logFile).size >= before + 3_000_000, `log file grew from ${before} to ${statSync(logFile).size} bytes`);
  assert.equal(await storage.log.count("orders"), 400);
});

test("log - under appends that never pause and reads beside them, the WAL stays near its limit", async (t) => {
  const { dataDir, open } = tempStorage(t);
  const storage = open({ checkpointAfterBytes: 256 * 1024, walLimitBytes: 4 * 1024 * 1024 });
  const walFile = join(dataDir, "relaybus.db-wal");
  // Eight appenders, each sending its next call the moment the last is acked: the writer always
  // has a commit waiting, so a passive checkpoint beside it never catches up with the last
  // frame, and the WAL (which restarts from its start only after one has) would grow with
  // every commit: 40 MB here without the writer's own checkpoint past the limit.
  let appended = 0;
  const appender = async (n: number) => {
    for (let i = 0; appended < 4_000; i++) {
      appended += 10;
      await storage.log.append(
        Array.from({ length: 10 }, (_, k) => makeEvent("orders", `a${n}-${i}-${k}`, { blob: "x".repeat(10_000) })),
      );
    }
  };
  // A reader (as a replay is) reading the log file the whole time: far enough behind the head
  // that the recent events kept in memory do not answer it.
  let reading = true;
  let reads = 0;
  const reader = (async () => {
    while (reading) {
      const head = await storage.log.lastOffset("orders");
      await storage.log.read("orders", Math.max(0, head - 2_000), 20);
      reads++;
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  let largestWal = 0;
  const sampler = setInterval(() => {
    if (existsSync(walFile)) largestWal = Math.max(largestWal, statSync(walFile).size);
  }, 5);
  try {
    await Promise.all(Array.from({ length: 8 }, (_, n) => appender(n)));
  } finally {
    clearInterval(sampler);
    reading = false;
    await reader;
  }
  if (existsSync(walFile)) largestWal = Math.max(largestWal, statSync(walFile).size);
  assert.equal(await storage.log.count("orders"), appended);
  assert.ok(reads > 10, `${reads} reads beside the appends`);
  assert.ok(largestWal < 16 * 1024 * 1024, `the WAL reached ${(largestWal / 1048576).toFixed(1)} MB for a limit of 4 MB`);
});
