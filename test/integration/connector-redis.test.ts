/**
 * The redis source and sink beyond the shared conformance tests, against the local Redis:
 * pending entries of a crashed or dead consumer, where a new group starts, how entries map
 * to events, stopping during a long blocking read, backlog, and the sink's formats, trimming
 * and refusals. Every test uses stream keys of its own and deletes them.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { SinkError } from "../../connectors/index.js";
import {
  redisSink,
  redisSource,
  type RedisSinkConfig,
  type RedisSourceConfig,
} from "../../connectors/redis/index.js";
import type { CloudEvent } from "../../src/types.js";
import {
  runSource,
  sinkContext,
  sourceContext,
  testEvents,
  type SourceRun,
} from "../helpers/connector-runs.js";
import { LOCAL_SERVICES, requireService } from "../helpers/local-services.js";
import { assertNothingOpen } from "../helpers/open-handles.js";

const REDIS_URL = LOCAL_SERVICES.redis.url;
const WAIT_MS = 10_000;
/** The Relaybus stream name these tests give connectors; the default group derives from it. */
const STREAM_NAME = "orders";
const DEFAULT_GROUP = `relaybus-${STREAM_NAME}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const skip = (await requireService("redis")) ?? false;

function cloudEvents(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, { type: "redis.test" });
}

function startSource(config: RedisSourceConfig): SourceRun {
  return runSource(redisSource, config, { streamName: STREAM_NAME, waitMs: WAIT_MS });
}

function sinkFor(config: RedisSinkConfig) {
  return redisSink.create(config, sinkContext({ streamName: STREAM_NAME }));
}

describe("redis connectors", { skip }, () => {
  let admin: Redis;
  const keys: string[] = [];
  /** A fresh stream key, deleted after the tests. */
  const freshKey = () => {
    const key = `relaybus-test:redis-it:${randomUUID()}`;
    keys.push(key);
    return key;
  };
  const add = (key: string, ...fields: string[]) =>
    admin.xadd(key, "*", ...fields) as Promise<string>;
  const addEvents = async (key: string, events: CloudEvent[]) => {
    for (const event of events) await add(key, "id", event.id, "event", JSON.stringify(event));
  };
  const pendingCount = async (key: string, group: string) =>
    ((await admin.xpending(key, group)) as [number])[0];

  before(() => {
    admin = new Redis(REDIS_URL);
  });
  after(async () => {
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
    await assertNothingOpen();
  });

  test("redis source - entries a crashed consumer read and never acknowledged come back first", async () => {
    const key = freshKey();
    await admin.xgroup("CREATE", key, DEFAULT_GROUP, "0", "MKSTREAM");
    await addEvents(key, cloudEvents(3, "read-before-crash"));
    // A previous run of the same consumer read these, then died before confirming them.
    const read = await admin.xreadgroup(
      "GROUP",
      DEFAULT_GROUP,
      "relaybus",
      "COUNT",
      10,
      "STREAMS",
      key,
      ">",
    );
    assert.equal((read as [string, unknown[]][])[0]?.[1].length, 3);
    await addEvents(key, cloudEvents(2, "never-read"));

    const run = startSource({ url: REDIS_URL, stream: key });
    try {
      await run.waitFor(5);
      assert.deepEqual(
        run.received.map((e) => e.id),
        [
          "read-before-crash-0",
          "read-before-crash-1",
          "read-before-crash-2",
          "never-read-0",
          "never-read-1",
        ],
      );
    } finally {
      await run.stop();
    }
    assert.equal(
      await pendingCount(key, DEFAULT_GROUP),
      0,
      "everything handed over was acknowledged",
    );
  });

  test("redis source - entries pending under a dead consumer are claimed once idle", async () => {
    const key = freshKey();
    await admin.xgroup("CREATE", key, DEFAULT_GROUP, "0", "MKSTREAM");
    await addEvents(key, cloudEvents(2, "orphaned"));
    await admin.xreadgroup(
      "GROUP",
      DEFAULT_GROUP,
      "worker-that-died",
      "COUNT",
      10,
      "STREAMS",
      key,
      ">",
    );

    const run = startSource({
      url: REDIS_URL,
      stream: key,
      consumer: "worker-alive",
      claimIdleMs: 300,
      blockMs: 100,
    });
    try {
      await run.waitFor(2);
      assert.deepEqual(
        run.received.map((e) => e.id),
        ["orphaned-0", "orphaned-1"],
      );
    } finally {
      await run.stop();
    }
    assert.equal(await pendingCount(key, DEFAULT_GROUP), 0);
  });

  test('redis source - a group created at "$" skips older entries, one created at "0" reads them', async () => {
    const key = freshKey();
    await addEvents(key, cloudEvents(2, "older"));
    const fromNow = startSource({ url: REDIS_URL, stream: key, group: "from-now", startId: "$" });
    const fromStart = startSource({ url: REDIS_URL, stream: key, group: "from-start" });
    try {
      // "newer" must come after the "$" group was created to count as new for it.
      await until(async () => ((await admin.xinfo("GROUPS", key)) as unknown[]).length === 2);
      await addEvents(key, cloudEvents(2, "newer"));
      await fromStart.waitFor(4);
      await fromNow.waitFor(2);
      await sleep(300);
      assert.deepEqual(
        fromNow.received.map((e) => e.id),
        ["newer-0", "newer-1"],
      );
      assert.deepEqual(
        fromStart.received.map((e) => e.id),
        ["older-0", "older-1", "newer-0", "newer-1"],
      );
    } finally {
      await Promise.all([fromNow.stop(), fromStart.stop()]);
    }
  });

  test("redis source - maps entries: a CloudEvent in event passes, a data field or one field is the body, several fields an object", async () => {
    const key = freshKey();
    // An id set by hand, the first so that it is lower than the generated ones that follow.
    await admin.xadd(key, "1700000000000-5", "payload", "not json");
    const passing = cloudEvents(1, "passes")[0] as CloudEvent;
    await add(key, "id", passing.id, "event", JSON.stringify(passing));
    const dataId = await add(key, "id", "ignored-for-the-id", "data", '{"total":12.5}');
    await add(key, "user", "42", "item", "book");
    await add(key, "event", '{"specversion":"1.0","id":"no-source"}');

    const run = startSource({ url: REDIS_URL, stream: key });
    try {
      await run.waitFor(5);
    } finally {
      await run.stop();
    }
    const [plain, asIs, data, fields, notQuite] = run.received;
    assert.deepEqual(asIs, passing);
    assert.equal(data?.id, `${key}:${dataId}`);
    assert.equal(data?.source, `relaybus.redis/${key}`);
    assert.equal(data?.type, "relaybus.redis.message");
    assert.equal(data?.datacontenttype, "application/json");
    assert.deepEqual(data?.data, { total: 12.5 });
    assert.equal(data?.time, new Date(Number(dataId.split("-")[0])).toISOString());
    assert.deepEqual(
      fields?.data,
      { user: "42", item: "book" },
      "several fields: an object of strings",
    );
    assert.deepEqual(
      notQuite?.data,
      { specversion: "1.0", id: "no-source" },
      "an incomplete CloudEvent is wrapped",
    );
    assert.equal(plain?.id, `${key}:1700000000000-5`);
    assert.equal(plain?.data, "not json");
    assert.equal(plain?.time, "2023-11-14T22:13:20.000Z");
  });

  test("redis source - an entry deleted while pending is acknowledged and skipped", async () => {
    const key = freshKey();
    await admin.xgroup("CREATE", key, DEFAULT_GROUP, "0", "MKSTREAM");
    const [gone] = [await add(key, "payload", "deleted"), await add(key, "payload", "kept")];
    await admin.xreadgroup("GROUP", DEFAULT_GROUP, "relaybus", "COUNT", 10, "STREAMS", key, ">");
    await admin.xdel(key, gone as string);

    const run = startSource({ url: REDIS_URL, stream: key });
    try {
      await run.waitFor(1);
      await sleep(200);
      assert.deepEqual(
        run.received.map((e) => e.data),
        ["kept"],
      );
    } finally {
      await run.stop();
    }
    assert.equal(await pendingCount(key, DEFAULT_GROUP), 0);
  });

  test("redis source - run ends at once when aborted during a long blocking read", async () => {
    const key = freshKey();
    const run = startSource({ url: REDIS_URL, stream: key, blockMs: 60_000 });
    const readerName = `relaybus-source:${STREAM_NAME}:${key}:read`;
    await until(async () => {
      const list = String(await admin.call("CLIENT", "LIST"));
      return list
        .split("\n")
        .some((line) => line.includes(` name=${readerName} `) && line.includes(" cmd=xreadgroup "));
    });
    await sleep(100);
    const started = Date.now();
    await run.stop();
    assert.ok(Date.now() - started < 1_000, `stopped after ${Date.now() - started} ms`);
  });

  test("redis source - backlog counts entries not yet read and those pending", async () => {
    const key = freshKey();
    // Not run: run() would create the group.
    const source = redisSource.create(
      { url: REDIS_URL, stream: key },
      sourceContext({ streamName: STREAM_NAME, maxBatchEvents: 10 }),
    );
    try {
      assert.equal(await source.backlog?.(), undefined, "no stream, no group: unknown");
      await addEvents(key, cloudEvents(5, "waiting"));
      await admin.xgroup("CREATE", key, DEFAULT_GROUP, "0");
      await admin.xreadgroup("GROUP", DEFAULT_GROUP, "someone", "COUNT", 2, "STREAMS", key, ">");
      assert.equal(await source.backlog?.(), 5, "3 never read + 2 pending");
    } finally {
      await source.close();
    }
  });

  test("redis sink and source - what the sink writes the source hands over unchanged", async () => {
    const key = freshKey();
    const written = cloudEvents(3, "round-trip");
    const sink = sinkFor({ url: REDIS_URL, stream: key });
    try {
      await sink.write(written);
    } finally {
      await sink.close();
    }
    const entries = await admin.xrange(key, "-", "+");
    assert.deepEqual(
      entries.map(([, fields]) => fields.slice(0, 2)),
      written.map((e) => ["id", e.id]),
      "an id field beside each event",
    );
    const run = startSource({ url: REDIS_URL, stream: key });
    try {
      await run.waitFor(3);
      assert.deepEqual(run.received, written);
    } finally {
      await run.stop();
    }
  });

  test('redis sink - format "data" writes only the data, which the source wraps', async () => {
    const key = freshKey();
    const sink = sinkFor({ url: REDIS_URL, stream: key, format: "data" });
    try {
      await sink.write(cloudEvents(2, "data-only"));
    } finally {
      await sink.close();
    }
    const entries = await admin.xrange(key, "-", "+");
    assert.deepEqual(entries[0]?.[1], ["id", "data-only-0", "data", '{"i":0}']);
    const run = startSource({ url: REDIS_URL, stream: key });
    try {
      await run.waitFor(2);
      assert.deepEqual(
        run.received.map((e) => e.data),
        [{ i: 0 }, { i: 1 }],
      );
      assert.equal(run.received[0]?.type, "relaybus.redis.message");
    } finally {
      await run.stop();
    }
  });

  test("redis sink - maxLength trims the stream to about that many entries", async () => {
    const key = freshKey();
    const sink = sinkFor({ url: REDIS_URL, stream: key, maxLength: 10 });
    try {
      for (let i = 0; i < 5; i++) await sink.write(cloudEvents(200, `trimmed-${i}`));
    } finally {
      await sink.close();
    }
    const length = await admin.xlen(key);
    // "~" trims whole radix-tree nodes (100 entries by default), so a node's worth may stay.
    assert.ok(length >= 10 && length <= 300, `XLEN ${length}`);
  });

  test("redis sink - refusals a retry cannot fix are permanent, an unreachable server retryable", async () => {
    const key = freshKey();
    const user = `relaybus-test-${randomUUID()}`;
    await admin.call("ACL", "SETUSER", user, "on", ">secret", "~*", "+@all", "-xadd");
    const cases: { url: string; retryable: boolean; code: RegExp }[] = [
      {
        url: `redis://${user}:secret@127.0.0.1:${LOCAL_SERVICES.redis.port}`,
        retryable: false,
        code: /NOPERM/,
      },
      {
        url: `redis://${user}:wrong@127.0.0.1:${LOCAL_SERVICES.redis.port}`,
        retryable: false,
        code: /WRONGPASS/,
      },
      { url: "redis://127.0.0.1:1", retryable: true, code: /ECONNREFUSED|retries|closed/i },
    ];
    try {
      for (const { url, retryable, code } of cases) {
        const sink = sinkFor({ url, stream: key, timeoutMs: 5_000 });
        try {
          await assert.rejects(sink.write(cloudEvents(1, "refused")), (error: unknown) => {
            assert.ok(error instanceof SinkError, String(error));
            assert.equal(error.retryable, retryable, `${url}: ${error.message}`);
            assert.match(error.message, code);
            return true;
          });
        } finally {
          await sink.close();
        }
      }
    } finally {
      await admin.call("ACL", "DELUSER", user);
    }
    assert.equal(await admin.exists(key), 0, "nothing was written");
  });
});

async function until(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail("the condition never held");
    await sleep(20);
  }
}
