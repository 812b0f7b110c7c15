/**
 * What the shared conformance tests cannot say about the postgres connectors, against the
 * local PostgreSQL: the sink stores a retried batch once and classifies real server failures;
 * the source resumes from a given position, keeps rows of equal column value together, maps
 * rows to events, wakes on NOTIFY and holds back unsettled rows.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import pg from "pg";
import type { Sink } from "../../connectors/index.js";
import {
  postgresSink,
  postgresSource,
  type PostgresSinkConfig,
  type PostgresSourceConfig,
} from "../../connectors/postgres/index.js";
import type { CloudEvent } from "../../src/types.js";
import { SINK_TABLE_COLUMNS, tableName } from "../conformance/harnesses/postgres.js";
import {
  runSource,
  sinkContext,
  sourceContext,
  testEvents,
  type SourceRun,
  type SourceRunOptions,
} from "../helpers/connector-runs.js";
import { LOCAL_SERVICES, requireService } from "../helpers/local-services.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { assertRejectsWithSinkError } from "../helpers/sink-errors.js";

const URL = LOCAL_SERVICES.postgres.url;
const skip = (await requireService("postgres")) ?? false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, { type: "pg.test" });
}

interface Fixture {
  admin: pg.Pool;
  /** A fresh table name, created with `columns` and dropped after the test. */
  table(prefix: string, columns: string): Promise<string>;
  /** Runs `close` after the test, before the tables are dropped (last deferred, first run). */
  defer(close: () => Promise<unknown>): void;
  sink(config: Omit<PostgresSinkConfig, "connectionString"> & { connectionString?: string }): Sink;
  /** A run of the source (every batch confirmed), stopped after the test; `run` may fail. */
  source(
    config: Omit<PostgresSourceConfig, "connectionString">,
    options?: Pick<SourceRunOptions, "position" | "maxBatchEvents">,
  ): SourceRun;
}

/** A fixture whose tables, connectors and pool are closed after the test, which then checks nothing is left open. */
function fixture(t: TestContext): Fixture {
  const admin = new pg.Pool({ connectionString: URL, max: 2 });
  const tables: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
    for (const table of tables) await admin.query(`DROP TABLE IF EXISTS ${table} CASCADE`);
    await admin.end();
    await assertNothingOpen();
  });
  return {
    admin,
    async table(prefix, columns) {
      const name = tableName(prefix);
      tables.push(name);
      await admin.query(`CREATE TABLE ${name} (${columns})`);
      return name;
    },
    defer(close) {
      closers.push(close);
    },
    sink(config) {
      const sink = postgresSink.create(
        { connectionString: URL, ...config },
        sinkContext({ streamName: "it" }),
      );
      closers.push(() => sink.close());
      return sink;
    },
    source(config, options = {}) {
      const run = runSource(
        postgresSource,
        { connectionString: URL, ...config },
        { ...options, streamName: "it", runMayFail: true },
      );
      closers.push(run.stop);
      return run;
    },
  };
}

test("postgres sink - a retried batch is stored once, in order", { skip }, async (t) => {
  const f = fixture(t);
  const table = await f.table("it_sink", SINK_TABLE_COLUMNS);
  const sink = f.sink({ table });
  const first = events(3, "a");
  await sink.write(first);
  // The stream retries the batch that failed after its first part was stored, then goes on.
  await sink.write([...first, ...events(2, "b")]);
  await sink.write(events(2, "b"));
  const held = await f.admin.query(`SELECT id FROM ${table} ORDER BY seq`);
  assert.deepEqual(
    held.rows.map((r: { id: string }) => r.id),
    ["a-0", "a-1", "a-2", "b-0", "b-1"],
  );
});

test(
  "postgres sink - createTable makes the documented layout and fills every column",
  { skip },
  async (t) => {
    const f = fixture(t);
    const table = await f.table("it_created", "x int");
    await f.admin.query(`DROP TABLE ${table}`);
    const sink = f.sink({ table, createTable: true });
    const event: CloudEvent = {
      specversion: "1.0",
      id: "e-1",
      source: "s",
      type: "t",
      subject: "sub",
      time: "2024-05-01T10:00:00.5Z",
      data: "text ✓",
    };
    await sink.write([event, { specversion: "1.0", id: "e-2", source: "s", type: "t" }]);
    const columns = await f.admin.query(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
      [table],
    );
    assert.deepEqual(
      columns.rows.map(
        (r: { column_name: string; data_type: string }) => `${r.column_name} ${r.data_type}`,
      ),
      [
        "seq bigint",
        "id text",
        "source text",
        "type text",
        "time timestamp with time zone",
        "subject text",
        "data jsonb",
        "event jsonb",
      ],
    );
    const rows = await f.admin.query(
      `SELECT id, source, type, subject, time, data, event FROM ${table} ORDER BY seq`,
    );
    assert.deepEqual(rows.rows[0], {
      id: "e-1",
      source: "s",
      type: "t",
      subject: "sub",
      time: new Date("2024-05-01T10:00:00.5Z"),
      data: "text ✓",
      event,
    });
    assert.equal(rows.rows[1].data, null, "no data is SQL NULL");
    assert.equal(rows.rows[1].time, null);
  },
);

test(
  "postgres sink - quoted schema-qualified names and a column mapping are honoured",
  { skip },
  async (t) => {
    const f = fixture(t);
    const schema = `Relaybus ${tableName("schema")}`;
    f.defer(() => f.admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`));
    await f.admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
    const qualified = `${pg.escapeIdentifier(schema)}."Odd ""Name"""`;
    await f.admin.query(
      `CREATE TABLE ${qualified} (n bigserial, "Event Id" text UNIQUE, body jsonb)`,
    );
    const sink = f.sink({ table: qualified, columns: { id: '"Event Id"', event: "Body" } });
    const written = events(2, "q");
    await sink.write(written);
    await sink.write(written);
    const rows = await f.admin.query(`SELECT "Event Id" AS id, body FROM ${qualified} ORDER BY n`);
    assert.deepEqual(
      rows.rows.map((r: { id: string; body: CloudEvent }) => [r.id, r.body]),
      written.map((e) => [e.id, e]),
    );
  },
);

test("postgres sink - a missing table or column is non-retryable", { skip }, async (t) => {
  const f = fixture(t);
  await assertRejectsWithSinkError(
    f.sink({ table: tableName("missing") }).write(events(1, "m")),
    false,
    /SQLSTATE 42P01/,
  );
  const table = await f.table("it_columns", "id text PRIMARY KEY");
  await assertRejectsWithSinkError(
    f.sink({ table, columns: { id: "id", data: "nope" } }).write(events(1, "m")),
    false,
    /SQLSTATE 42703/,
  );
});

test("postgres sink - an unreachable server is retryable", { skip }, async (t) => {
  const f = fixture(t);
  const sink = f.sink({
    table: "t",
    connectionString: "postgres://postgres@127.0.0.1:1/test",
    timeoutMs: 2_000,
  });
  await assertRejectsWithSinkError(sink.write(events(1, "u")), true);
});

test(
  "postgres sink - a connection the server terminates mid-write is retryable, and the retry stores the batch",
  { skip },
  async (t) => {
    const f = fixture(t);
    const table = await f.table("it_terminate", SINK_TABLE_COLUMNS);
    const sink = f.sink({ table });
    const locker = await f.admin.connect();
    await locker.query(`BEGIN; LOCK TABLE ${table} IN SHARE MODE`);
    const write = sink.write(events(2, "t"));
    write.catch(() => {});
    let pid: number | undefined;
    while (pid === undefined) {
      const waiting = await f.admin.query(
        "SELECT pid FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
        [table],
      );
      pid = (waiting.rows[0] as { pid: number } | undefined)?.pid;
      await sleep(20);
    }
    await f.admin.query("SELECT pg_terminate_backend($1)", [pid]);
    await locker.query("ROLLBACK");
    locker.release();
    await assertRejectsWithSinkError(write, true);
    await sink.write(events(2, "t"));
    const held = await f.admin.query(`SELECT id FROM ${table} ORDER BY seq`);
    assert.deepEqual(
      held.rows.map((r: { id: string }) => r.id),
      ["t-0", "t-1"],
    );
  },
);

test("postgres source - resumes after the position it is given", { skip }, async (t) => {
  const f = fixture(t);
  const table = await f.table("it_resume", "seq bigserial PRIMARY KEY, payload jsonb");
  await f.admin.query(
    `INSERT INTO ${table} (payload) SELECT to_jsonb(n) FROM generate_series(1, 5) AS n`,
  );
  const run = f.source(
    { table, column: "seq", payloadColumn: "payload", pollIntervalMs: 20 },
    { position: "3" },
  );
  await run.waitFor(2);
  await sleep(100);
  assert.deepEqual(
    run.received.map((e) => [e.id, e.data]),
    [
      [`${table}:4`, 4],
      [`${table}:5`, 5],
    ],
  );
  assert.equal(run.position(), "5", "the position is the last row's column value as text");
  await run.stop();
});

test("postgres source - wraps whole rows when there is no payload column", { skip }, async (t) => {
  const f = fixture(t);
  const table = await f.table(
    "it_rows",
    "n bigserial PRIMARY KEY, name text, amount numeric, code text UNIQUE",
  );
  await f.admin.query(
    `INSERT INTO ${table} (name, amount, code) VALUES ('first', 1.5, 'A1'), (NULL, 2, 'B2')`,
  );
  const run = f.source({ table, column: "n", idColumn: "code" });
  await run.waitFor(2);
  assert.deepEqual(run.received, [
    {
      specversion: "1.0",
      id: `${table}:A1`,
      source: `relaybus.postgres/${table}`,
      type: "relaybus.postgres.row",
      datacontenttype: "application/json",
      data: { n: 1, name: "first", amount: 1.5, code: "A1" },
    },
    {
      specversion: "1.0",
      id: `${table}:B2`,
      source: `relaybus.postgres/${table}`,
      type: "relaybus.postgres.row",
      datacontenttype: "application/json",
      data: { n: 2, name: null, amount: 2, code: "B2" },
    },
  ]);
  await run.stop();
});

test(
  "postgres source - a timestamptz column resumes to the microsecond and gives events their time",
  { skip },
  async (t) => {
    const f = fixture(t);
    const table = await f.table("it_time", "at timestamptz NOT NULL, payload text");
    await f.admin.query(
      `INSERT INTO ${table} VALUES ('2024-01-01 00:00:00.000001+00', 'one'), ('2024-01-01 00:00:00.000002+00', '{"two":2}')`,
    );
    const first = f.source(
      { table, column: "at", payloadColumn: "payload" },
      { maxBatchEvents: 1 },
    );
    await first.waitFor(2);
    assert.equal(first.batches.length, 2);
    const resumeAt = first.batches[0]?.position;
    await first.stop();
    const second = f.source(
      { table, column: "at", payloadColumn: "payload" },
      { position: resumeAt },
    );
    await second.waitFor(1);
    await sleep(100);
    assert.deepEqual(
      second.received.map((e) => [e.time, e.data]),
      [["2024-01-01T00:00:00.000002+00:00", { two: 2 }]],
    );
    assert.equal(first.received[0]?.data, "one", "text that is not JSON stays a string");
    await second.stop();
  },
);

test(
  "postgres source - rows sharing a column value are neither split from their position nor skipped",
  { skip },
  async (t) => {
    const f = fixture(t);
    const table = await f.table("it_ties", "v bigint NOT NULL, id text PRIMARY KEY");
    const values = [1, 2, 3, 3, 3, 3, 3, 3, 4];
    await f.admin.query(
      `INSERT INTO ${table} SELECT v, 'r' || i FROM unnest($1::bigint[]) WITH ORDINALITY AS u(v, i)`,
      [values],
    );
    const run = f.source({ table, column: "v", idColumn: "id" }, { maxBatchEvents: 2 });
    await run.waitFor(values.length);
    await sleep(100);
    assert.deepEqual(
      run.received.map((e) => e.id).sort(),
      values.map((_, i) => `${table}:r${i + 1}`).sort(),
    );
    assert.ok(run.batches.every((b) => b.events.length <= 2));
    // Only the last page of the group of 3s says "after 3"; a restart before it reads them all again.
    assert.deepEqual(
      run.batches.map((b) => b.position),
      ["2", undefined, undefined, "3", "4"],
    );
    await run.stop();
  },
);

test("postgres source - a missing table makes run reject", { skip }, async (t) => {
  const f = fixture(t);
  const run = f.source({ table: tableName("missing"), column: "seq" });
  await assert.rejects(run.running, /42P01/);
  await run.stop();
});

test("postgres source - NOTIFY on the channel wakes the poller", { skip }, async (t) => {
  const f = fixture(t);
  const table = await f.table("it_notify", "seq bigserial PRIMARY KEY, payload jsonb");
  const run = f.source({
    table,
    column: "seq",
    payloadColumn: "payload",
    pollIntervalMs: 60_000,
    channel: table,
  });
  // Let the first (empty) read pass: the source now waits a minute unless notified.
  await sleep(500);
  await f.admin.query(`INSERT INTO ${table} (payload) VALUES ('"hello"'); NOTIFY ${table}`);
  await run.waitFor(1, 5_000);
  assert.equal(run.received[0]?.data, "hello");
  await run.stop();
});

test(
  "postgres source - settleMs holds back rows younger than the settle time",
  { skip },
  async (t) => {
    const f = fixture(t);
    const table = await f.table(
      "it_settle",
      "at timestamptz NOT NULL DEFAULT clock_timestamp(), payload jsonb",
    );
    const run = f.source({
      table,
      column: "at",
      payloadColumn: "payload",
      pollIntervalMs: 50,
      settleMs: 1_500,
    });
    await f.admin.query(`INSERT INTO ${table} (payload) VALUES ('1')`);
    await sleep(700);
    assert.equal(run.received.length, 0, "a row younger than settleMs is not read");
    await run.waitFor(1, 5_000);
    await run.stop();
    const refused = f.source({
      table: await f.table("it_settle_int", "n bigint"),
      column: "n",
      settleMs: 100,
    });
    await assert.rejects(refused.running, /settleMs needs a timestamp/);
  },
);

test("postgres source - backlog counts the rows not handed over yet", { skip }, async (t) => {
  const f = fixture(t);
  const table = await f.table("it_backlog", "seq bigserial PRIMARY KEY, payload jsonb");
  await f.admin.query(
    `INSERT INTO ${table} (payload) SELECT to_jsonb(n) FROM generate_series(1, 4) AS n`,
  );
  const run = f.source({ table, column: "seq" }, { position: "1" });
  await run.waitFor(3);
  assert.equal(await run.source.backlog?.(), 0, "all read");
  await run.stop();
  const idle = postgresSource.create(
    { connectionString: URL, table, column: "seq" },
    sourceContext({ streamName: "it", position: "1", maxBatchEvents: 10 }),
  );
  try {
    assert.equal(await idle.backlog?.(), 3, "rows after the given position, before any read");
  } finally {
    await idle.close();
  }
  assert.equal(await idle.backlog?.(), undefined, "a closed source cannot count");
});

test(
  "postgres - the sink's table is a source that passes the events through",
  { skip },
  async (t) => {
    const f = fixture(t);
    const table = await f.table("it_chain", SINK_TABLE_COLUMNS);
    const written = events(4, "chain");
    await f.sink({ table }).write(written);
    const run = f.source({ table, column: "seq", payloadColumn: "event" });
    await run.waitFor(4);
    assert.deepEqual(run.received, written);
    await run.stop();
  },
);
