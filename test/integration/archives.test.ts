/**
 * Archives: the store on a real SQLite file (counters, windows, retention, deletion), and
 * through a real service: the archiver's pattern filter, its start at the bus's end, the
 * API's answers and errors, and retention run by the service.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { measureEvent } from "../../src/events/sizing.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import type { CloudEvent, StoredEvent } from "../../src/types.js";
import { startTestService, type TestService } from "../helpers/service.js";

const DAY_MS = 86_400_000;

function tempStorage(t: TestContext): {
  storage: SqliteStorage;
  clock: { now: number; nowMs(): number };
} {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-archives-"));
  const clock = { now: 100 * DAY_MS, nowMs: () => clock.now };
  const storage = openSqliteStorage({
    dataDir: join(dir, "data"),
    durability: "fsync-wal-only",
    clock,
  });
  t.after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { storage, clock };
}

function event(n: number, type = "order.created"): CloudEvent {
  return { specversion: "1.0", id: `e-${n}`, source: "shop", type, data: { n } };
}

function stored(n: number, receivedAtMs: number): StoredEvent {
  return { ...measureEvent("orders", event(n)), offset: n, receivedAtMs };
}

test("archive store - keeps events with their counters, reads a window in offset order, skips repeats", (t) => {
  const { storage } = tempStorage(t);
  const archive = storage.archives.create({ name: "a", bus: "orders", retentionDays: 0 }, 0, 1);
  const events = [stored(1, 1_000), stored(2, 2_000), stored(3, 2_000), stored(4, 3_000)];
  assert.ok(storage.archives.commitArchived(archive.id, 4, events));
  assert.ok(
    storage.archives.commitArchived(archive.id, 4, [events[0]!]),
    "a repeat is skipped, not an error",
  );
  const after = storage.archives.get("a")!;
  assert.equal(after.eventCount, 4);
  assert.equal(
    after.sizeBytes,
    events.reduce((sum, e) => sum + e.sizeBytes, 0),
  );
  assert.equal(after.throughOffset, 4);

  const window = { fromMs: 2_000, toMs: 3_000, throughOffset: 4 };
  const read = storage.archives.readWindow(archive.id, "orders", 0, window, 10);
  assert.deepEqual(
    read.map((e) => e.offset),
    [2, 3, 4],
  );
  assert.deepEqual(read[0]!.event, event(2));
  assert.equal(read[0]!.json, events[1]!.json);
  assert.equal(read[0]!.bus, "orders");
  assert.deepEqual(
    storage.archives.readWindow(archive.id, "orders", 2, window, 1).map((e) => e.offset),
    [3],
  );
  assert.deepEqual(
    storage.archives
      .readWindow(archive.id, "orders", 0, { ...window, throughOffset: 3 }, 10)
      .map((e) => e.offset),
    [2, 3],
  );
  assert.equal(storage.archives.countWindow(archive.id, window), 3);
  assert.equal(storage.archives.firstOffsetFrom(archive.id, 1_500), 2);
  assert.equal(storage.archives.firstOffsetFrom(archive.id, 3_001), undefined);
  assert.equal(storage.archives.lowestCheckpoint("orders"), 4);
  assert.equal(storage.archives.lowestCheckpoint("payments"), undefined);
});

test("archive store - names are unique; a deleted archive is gone at once and a new one of its name starts empty", async (t) => {
  const { storage, clock } = tempStorage(t);
  const first = storage.archives.create(
    { name: "a", bus: "orders", pattern: { source: ["shop"] }, retentionDays: 7 },
    5,
    1,
  );
  assert.deepEqual(storage.archives.get("a")?.pattern, { source: ["shop"] });
  assert.throws(
    () => storage.archives.create({ name: "a", bus: "orders", retentionDays: 0 }, 0, 1),
    {
      code: "ArchiveAlreadyExists",
    },
  );
  assert.ok(
    storage.archives.commitArchived(first.id, 7, [stored(6, clock.now), stored(7, clock.now)]),
  );

  assert.ok(storage.archives.delete("a"));
  assert.equal(storage.archives.delete("a"), false);
  assert.equal(storage.archives.get("a"), undefined);
  assert.deepEqual(storage.archives.list(), []);
  assert.equal(
    storage.archives.commitArchived(first.id, 8, [stored(8, clock.now)]),
    false,
    "nothing stored for a deleted archive",
  );
  assert.equal(storage.archives.lowestCheckpoint("orders"), undefined);

  const second = storage.archives.create({ name: "a", bus: "orders", retentionDays: 0 }, 8, 2);
  assert.notEqual(second.id, first.id);
  assert.equal(second.eventCount, 0);
  assert.equal(
    storage.archives.countWindow(second.id, { fromMs: 0, toMs: clock.now, throughOffset: 100 }),
    0,
  );

  const pruned = await storage.archives.pruneOlderThan(clock.now, 1);
  assert.deepEqual(pruned, { expired: 0, ofDeletedArchives: 2 });
  const left = storage.stateDatabase.prepare("SELECT COUNT(*) AS n FROM archives").get() as {
    n: number;
  };
  assert.equal(left.n, 1, "the deleted archive's row goes with its last event");
});

test("archive store - retention deletes events older than retentionDays, in batches; 0 keeps them forever", async (t) => {
  const { storage, clock } = tempStorage(t);
  const week = storage.archives.create({ name: "week", bus: "orders", retentionDays: 7 }, 0, 1);
  const forever = storage.archives.create(
    { name: "forever", bus: "orders", retentionDays: 0 },
    0,
    1,
  );
  const old = [1, 2, 3, 4, 5].map((n) => stored(n, clock.now - 8 * DAY_MS));
  const recent = [6, 7].map((n) => stored(n, clock.now - 6 * DAY_MS));
  for (const archive of [week, forever])
    assert.ok(storage.archives.commitArchived(archive.id, 7, [...old, ...recent]));

  const result = await storage.archives.pruneOlderThan(clock.now, 2);
  assert.deepEqual(result, { expired: 5, ofDeletedArchives: 0 });
  const kept = storage.archives.get("week")!;
  assert.equal(kept.eventCount, 2);
  assert.equal(
    kept.sizeBytes,
    recent.reduce((sum, e) => sum + e.sizeBytes, 0),
  );
  assert.deepEqual(
    storage.archives
      .readWindow(week.id, "orders", 0, { fromMs: 0, toMs: clock.now, throughOffset: 7 }, 10)
      .map((e) => e.offset),
    [6, 7],
  );
  assert.equal(storage.archives.get("forever")!.eventCount, 7);
});

async function waitForArchive(
  service: TestService,
  name: string,
  throughOffset: number,
): Promise<Record<string, unknown>> {
  for (const deadline = Date.now() + 10_000; ;) {
    const answer = (await (await service.get(`/v1/archives/${name}`)).json()) as Record<
      string,
      unknown
    >;
    if (answer.archivedThroughOffset === throughOffset) return answer;
    assert.ok(
      Date.now() < deadline,
      `archive ${name} did not reach offset ${throughOffset}: ${JSON.stringify(answer)}`,
    );
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function publish(service: TestService, bus: string, types: string[]): Promise<void> {
  const answer = await service.post("/v1/events", {
    Entries: types.map((type, i) => ({
      EventBusName: bus,
      Source: "shop",
      DetailType: type,
      Detail: JSON.stringify({ i }),
    })),
  });
  assert.equal(answer.status, 200);
  assert.equal(((await answer.json()) as { FailedEntryCount: number }).FailedEntryCount, 0);
}

test("archiver - keeps the matching events of its bus from its creation on, and the API shows them", async (t) => {
  const service = await startTestService({
    rules: { "buses.yaml": "bus: orders\nrules: []\n", "other.yaml": "bus: other\nrules: []\n" },
  });
  t.after(() => service.close());
  await publish(service, "orders", ["order.created", "order.created"]); // before: not archived

  const created = await service.post("/v1/archives", {
    name: "created-orders",
    bus: "orders",
    description: "Orders created",
    pattern: { "detail-type": ["order.created"], detail: { i: [{ numeric: ["<", 10] }] } },
    retentionDays: 30,
  });
  assert.equal(created.status, 201);
  const view = (await created.json()) as Record<string, unknown>;
  assert.equal(view.archivedThroughOffset, 2);
  assert.equal(view.eventCount, 0);
  assert.equal(view.state, "enabled");
  assert.equal(view.retentionDays, 30);

  const everything = await service.post("/v1/archives", { name: "everything", bus: "orders" });
  assert.equal(everything.status, 201);
  assert.equal(((await everything.json()) as { retentionDays: number }).retentionDays, 0);

  await publish(service, "orders", ["order.created", "order.cancelled", "order.created"]);
  await publish(service, "other", ["order.created"]);
  const filled = await waitForArchive(service, "created-orders", 5);
  assert.equal(filled.eventCount, 2, "the two order.created of the five, not the cancelled one");
  const archive = service.storage.archives.get("created-orders")!;
  const events = service.storage.archives.readWindow(
    archive.id,
    "orders",
    0,
    { fromMs: 0, toMs: Date.now(), throughOffset: 5 },
    10,
  );
  assert.deepEqual(
    events.map((e) => [e.offset, e.event.type]),
    [
      [3, "order.created"],
      [5, "order.created"],
    ],
  );
  assert.equal(filled.sizeBytes, events[0]!.sizeBytes + events[1]!.sizeBytes);
  assert.equal((await waitForArchive(service, "everything", 5)).eventCount, 3);

  const list = (await (await service.get("/v1/archives")).json()) as {
    archives: { name: string }[];
  };
  assert.deepEqual(
    list.archives.map((a) => a.name),
    ["created-orders", "everything"],
  );

  const deleted = await fetch(`${service.url}/v1/archives/everything`, { method: "DELETE" });
  assert.equal(deleted.status, 204);
  await publish(service, "orders", ["order.created"]);
  await waitForArchive(service, "created-orders", 6);
  assert.equal((await service.get("/v1/archives/everything")).status, 404);
});

test("archives API - refuses bad input, naming the field", async (t) => {
  const service = await startTestService({ rules: { "orders.yaml": "bus: orders\nrules: []\n" } });
  t.after(() => service.close());
  const refused = async (body: unknown, status: number, code: string, message: RegExp) => {
    const answer = await service.post("/v1/archives", body);
    const error = ((await answer.json()) as { error: { code: string; message: string } }).error;
    assert.equal(answer.status, status, JSON.stringify(error));
    assert.equal(error.code, code);
    assert.match(error.message, message);
  };
  await refused({ bus: "orders" }, 400, "ValidationError", /body\.name: required/);
  await refused({ name: "bad name", bus: "orders" }, 400, "ValidationError", /body\.name/);
  await refused(
    { name: "a", bus: "orders", retentionDays: -1 },
    400,
    "ValidationError",
    /body\.retentionDays/,
  );
  await refused(
    { name: "a", bus: "orders", extra: 1 },
    400,
    "ValidationError",
    /unknown field "extra"/,
  );
  await refused({ name: "a", bus: "nope" }, 404, "BusNotFound", /nope/);
  await refused(
    { name: "a", bus: "orders", pattern: { detail: { n: [{ numeric: [">"] }] } } },
    400,
    "InvalidEventPattern",
    /\/pattern\/detail\/n/,
  );
  await refused(
    { name: "a", bus: "orders", pattern: { detail: { n: [1] }, data: { m: [2] } } },
    400,
    "InvalidEventPattern",
    /both "detail"/,
  );
  assert.equal((await service.post("/v1/archives", { name: "a", bus: "orders" })).status, 201);
  await refused({ name: "a", bus: "orders" }, 409, "ArchiveAlreadyExists", /"a" already exists/);

  const missing = await service.get("/v1/archives/nope");
  assert.equal(missing.status, 404);
  assert.equal(
    ((await missing.json()) as { error: { code: string } }).error.code,
    "ArchiveNotFound",
  );
  const put = await fetch(`${service.url}/v1/archives/a`, { method: "PUT" });
  assert.equal(put.status, 405);
  await put.body?.cancel();
});

test("archives - the service prunes archived events past retention when it starts, and keeps the rest", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-archive-retention-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rules = { "orders.yaml": "bus: orders\nrules: []\n" };
  let service = await startTestService({ dir, rules });
  assert.equal(
    (await service.post("/v1/archives", { name: "week", bus: "orders", retentionDays: 7 })).status,
    201,
  );
  assert.equal(
    (await service.post("/v1/archives", { name: "forever", bus: "orders" })).status,
    201,
  );
  await publish(service, "orders", ["a", "b", "c"]);
  await waitForArchive(service, "week", 3);
  await waitForArchive(service, "forever", 3);
  // Age two of them past the week, as if they had been received eight days ago.
  const eightDaysAgo = Date.now() - 8 * DAY_MS;
  (service.storage as SqliteStorage).stateDatabase
    .prepare("UPDATE archived_events SET received_at_ms = ? WHERE offset <= 2")
    .run(eightDaysAgo);
  await service.close();

  service = await startTestService({ dir, rules });
  t.after(() => service.close());
  for (
    const deadline = Date.now() + 10_000;
    service.storage.archives.get("week")!.eventCount !== 1;
  ) {
    assert.ok(Date.now() < deadline, "retention ran at start");
    await new Promise((r) => setTimeout(r, 20));
  }
  const week = service.storage.archives.get("week")!;
  const left = service.storage.archives.readWindow(
    week.id,
    "orders",
    0,
    { fromMs: 0, toMs: Date.now(), throughOffset: 3 },
    10,
  );
  assert.deepEqual(
    left.map((e) => e.offset),
    [3],
  );
  assert.equal(
    service.storage.archives.get("forever")!.eventCount,
    3,
    "retentionDays 0 keeps everything",
  );
});
