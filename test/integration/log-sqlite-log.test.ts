import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import Database from "better-sqlite3";
import { isRelaybusError } from "../../src/errors.js";
import {
  openSqliteStorage,
  type SqliteStorage,
  type SqliteStorageOptions,
} from "../../src/log/sqlite/index.js";
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
function tempStorage(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-log-"));
  const dataDir = join(dir, "data");
  const opened: SqliteStorage[] = [];
  t.after(async () => {
    for (const storage of opened) await storage.close();
    for (const storage of opened) assert.equal(storage.open, false, "storage left open");
    rmSync(dir, { recursive: true, force: true });
  });
  const open = (options: Partial<SqliteStorageOptions> = {}) => {
    const storage = openSqliteStorage({ dataDir, durability: "fsync", ...options });
    opened.push(storage);
    return storage;
  };
  return { dataDir, open };
}

test("log - offsets start at 1 and are gap-free per bus", async (t) => {
  const { log } = tempStorage(t).open();
  const first = await log.append([
    makeEvent("orders", "a"),
    makeEvent("payments", "b"),
    makeEvent("orders", "c"),
  ]);
  const second = await log.append([makeEvent("orders", "d")]);
  assert.deepEqual(
    first.map((e) => [e.bus, e.offset]),
    [
      ["orders", 1],
      ["payments", 1],
      ["orders", 2],
    ],
  );
  assert.deepEqual(
    second.map((e) => e.offset),
    [3],
  );
  assert.equal(await log.lastOffset("orders"), 3);
  assert.equal(await log.lastOffset("payments"), 1);
  assert.equal(await log.lastOffset("nothing"), 0);
});

test("log - stored events carry what ingress computed and when the log took them", async (t) => {
  let nowMs = 1_700_000_000_000;
  const { log } = tempStorage(t).open({ clock: { nowMs: () => nowMs } });
  const input = makeEvent("orders", "e-1", { total: 120, items: ["x"] });
  const [stored] = await log.append([input]);
  nowMs += 1;
  const [read] = await log.read("orders", 0, 10);
  for (const event of [stored, read]) {
    assert.ok(event);
    assert.deepEqual(event.event, input.event);
    assert.equal(event.json, input.json);
    assert.equal(event.sizeBytes, input.sizeBytes);
    assert.equal(event.units, 1);
    assert.equal(event.receivedAtMs, 1_700_000_000_000);
  }
});

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

test("log - onAppend fires after the commit, once per bus touched", async (t) => {
  const { log } = tempStorage(t).open();
  const seen: Array<[string, number]> = [];
  const unsubscribe = log.onAppend((bus) => {
    seen.push([bus, log.stats().commits]);
  });
  await Promise.all([
    log.append([makeEvent("a", "1"), makeEvent("b", "2")]),
    log.append([makeEvent("a", "3")]),
  ]);
  assert.deepEqual(seen, [
    ["a", 1],
    ["b", 1],
  ]);
  unsubscribe();
  await log.append([makeEvent("a", "4")]);
  assert.equal(seen.length, 2);
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

test("log - reopening keeps every event and continues the offsets", async (t) => {
  const temp = tempStorage(t);
  const first = temp.open();
  await first.log.append([makeEvent("a", "1"), makeEvent("a", "2"), makeEvent("b", "3")]);
  await first.close();

  const second = temp.open();
  assert.equal(await second.log.lastOffset("a"), 2);
  assert.deepEqual(
    (await second.log.read("a", 0, 10)).map((e) => e.event.id),
    ["1", "2"],
  );
  const [next] = await second.log.append([makeEvent("a", "4")]);
  assert.equal(next?.offset, 3);
  assert.equal((await second.log.findById("b", "3"))?.offset, 1);
});

test("log - read pages after an offset, readLast returns the newest oldest-first", async (t) => {
  const { log } = tempStorage(t).open();
  await log.append(Array.from({ length: 10 }, (_, i) => makeEvent("a", `e${i + 1}`)));
  await log.append([makeEvent("b", "other")]);
  assert.deepEqual(
    (await log.read("a", 3, 4)).map((e) => e.offset),
    [4, 5, 6, 7],
  );
  assert.deepEqual(
    (await log.read("a", 10, 4)).map((e) => e.offset),
    [],
  );
  assert.deepEqual(
    (await log.readLast("a", 3)).map((e) => e.offset),
    [8, 9, 10],
  );
  assert.deepEqual(await log.readLast("missing", 3), []);
});

test("log - findById finds by CloudEvent id within the bus, the latest when repeated", async (t) => {
  const { log } = tempStorage(t).open();
  await log.append([
    makeEvent("a", "dup"),
    makeEvent("b", "dup"),
    makeEvent("a", "x"),
    makeEvent("a", "dup"),
  ]);
  assert.equal((await log.findById("a", "dup"))?.offset, 3);
  assert.equal((await log.findById("b", "dup"))?.bus, "b");
  assert.equal(await log.findById("b", "x"), undefined);
});

test("log - retention deletes old events but never from keepFrom on", async (t) => {
  let nowMs = 1_000;
  const temp = tempStorage(t);
  const storage = temp.open({ clock: { nowMs: () => nowMs } });
  const { log } = storage;
  await log.append(Array.from({ length: 10 }, (_, i) => makeEvent("a", `old${i}`)));
  await log.append([makeEvent("b", "old-b")]);
  nowMs = 5_000;
  await log.append(Array.from({ length: 5 }, (_, i) => makeEvent("a", `new${i}`)));

  // The dispatcher has passed offset 5 of "a" and nothing of "b".
  const deleted = await log.pruneOlderThan(3_000, (bus) => (bus === "a" ? 6 : 1));
  assert.equal(deleted, 5);
  assert.equal(await log.count("a"), 10);
  assert.equal(await log.count("b"), 1);
  assert.deepEqual(
    (await log.read("a", 0, 1)).map((e) => e.offset),
    [6],
  );

  // Passed everything: only the events older than the cutoff go.
  assert.equal(await log.pruneOlderThan(3_000, () => Number.MAX_SAFE_INTEGER), 6);
  assert.deepEqual(
    (await log.read("a", 0, 100)).map((e) => e.event.id),
    ["new0", "new1", "new2", "new3", "new4"],
  );

  // All gone: offsets still never restart, not even after a reopen.
  assert.equal(await log.pruneOlderThan(10_000, () => Number.MAX_SAFE_INTEGER), 5);
  assert.equal(await log.count("a"), 0);
  assert.equal(await log.lastOffset("a"), 15);
  await storage.close();
  const reopened = temp.open({ clock: { nowMs: () => nowMs } });
  const [next] = await reopened.log.append([makeEvent("a", "after")]);
  assert.equal(next?.offset, 16);
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

test("log - close commits queued appends, later appends reject ServiceUnavailable", async (t) => {
  const temp = tempStorage(t);
  const storage = temp.open();
  const queued = storage.log.append([makeEvent("a", "queued")]);
  await storage.close();
  assert.equal((await queued)[0]?.offset, 1);
  await assert.rejects(storage.log.append([makeEvent("a", "late")]), (error: unknown) =>
    isRelaybusError(error, "ServiceUnavailable"),
  );
  const reopened = temp.open();
  assert.equal(await reopened.log.count("a"), 1);
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

test("log - an empty append resolves at once without a commit", async (t) => {
  const { log } = tempStorage(t).open();
  assert.deepEqual(await log.append([]), []);
  assert.equal(log.stats().commits, 0);
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
