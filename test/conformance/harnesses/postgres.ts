/**
 * Conformance harnesses of the postgres sink and source: a fresh table in the local
 * PostgreSQL per setUp (random suffix), dropped on close.
 *
 * The sink's failures are real ones the server raises, not scripted answers:
 * - retryable: the harness holds `LOCK TABLE ... IN SHARE MODE` in an open transaction, which
 *   blocks the sink's INSERT until the sink's own statement_timeout (config `timeoutMs`)
 *   cancels it with SQLSTATE 57014, as a lock held too long by another writer would. The
 *   harness releases the lock as soon as the blocked INSERT is gone (seen in pg_locks).
 * - non-retryable: the harness adds `CHECK (seq <> N) NOT VALID`, N being the next value of the
 *   table's `seq` sequence, so exactly the next row violates it (SQLSTATE 23514) and every
 *   later row, which takes a later value, passes; the constraint is dropped once N is used.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { SinkDefinition, SourceDefinition } from "../../../connectors/index.js";
import { postgresSink, postgresSource } from "../../../connectors/postgres/index.js";
import type { CloudEvent, JsonValue } from "../../../src/types.js";
import { LOCAL_SERVICES, requireService } from "../../helpers/local-services.js";
import type { SinkHarness, SourceHarness } from "../connector-harness.js";

const URL = LOCAL_SERVICES.postgres.url;
/** How long the harness waits for the sink to meet the failure it set up. */
const FAILURE_WAIT_MS = 30_000;

/** The default table layout the sink's `createTable` makes, written out independently. */
export const SINK_TABLE_COLUMNS =
  "seq bigserial NOT NULL, id text PRIMARY KEY, source text NOT NULL, type text NOT NULL, time timestamptz, subject text, data jsonb, event jsonb NOT NULL";

/** A fresh table name for one test. */
export function tableName(prefix: string): string {
  return `relaybus_${prefix}_${randomBytes(6).toString("hex")}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` every 20 ms until it holds or FAILURE_WAIT_MS passed. */
async function until(done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + FAILURE_WAIT_MS;
  while (Date.now() < deadline && !(await done())) await sleep(20);
}

export const sinkHarness: SinkHarness = {
  definition: postgresSink as SinkDefinition<never>,
  skipReason: () => requireService("postgres"),
  async setUp() {
    const table = tableName("sink");
    const admin = new pg.Pool({ connectionString: URL, max: 3 });
    await admin.query(`CREATE TABLE ${table} (${SINK_TABLE_COLUMNS})`);
    // The failure being staged, if any: later calls wait for it to be cleaned up.
    let staged: Promise<void> = Promise.resolve();

    async function waiting(): Promise<number> {
      const result = await admin.query(
        "SELECT count(*)::int AS n FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
        [table],
      );
      return (result.rows[0] as { n: number }).n;
    }

    async function holdLockOnce(): Promise<void> {
      const locker = await admin.connect();
      await locker.query("BEGIN");
      await locker.query(`LOCK TABLE ${table} IN SHARE MODE`);
      staged = (async () => {
        try {
          await until(async () => (await waiting()) > 0);
          await until(async () => (await waiting()) === 0);
        } finally {
          await locker.query("ROLLBACK");
          locker.release();
        }
      })();
    }

    async function violateOnce(): Promise<void> {
      const sequence = `pg_get_serial_sequence('${table}', 'seq')::regclass`;
      const last = async () =>
        (
          (await admin.query(`SELECT pg_sequence_last_value(${sequence}) AS v`)).rows[0] as {
            v: string | null;
          }
        ).v;
      const next = Number((await last()) ?? 0) + 1;
      await admin.query(
        `ALTER TABLE ${table} ADD CONSTRAINT relaybus_fail_next CHECK (seq <> ${next}) NOT VALID`,
      );
      staged = (async () => {
        await until(async () => Number((await last()) ?? 0) >= next);
        await admin.query(`ALTER TABLE ${table} DROP CONSTRAINT relaybus_fail_next`);
      })();
    }

    return {
      config: { connectionString: URL, table, createTable: true, timeoutMs: 1_000 },
      invalidConfig: { table: `${table}; DROP TABLE x`, timeoutMs: 0 },
      async readBack() {
        await staged;
        const result = await admin.query(`SELECT event FROM ${table} ORDER BY seq`);
        return result.rows.map((row: { event: CloudEvent }) => row.event);
      },
      async failNext(retryable) {
        await staged;
        await (retryable ? holdLockOnce() : violateOnce());
      },
      async close() {
        await staged.catch(() => {});
        await admin.query(`DROP TABLE IF EXISTS ${table}`);
        await admin.end();
      },
    };
  },
};

export const sourceHarness: SourceHarness = {
  definition: postgresSource as SourceDefinition<never>,
  skipReason: () => requireService("postgres"),
  async setUp() {
    const table = tableName("source");
    const admin = new pg.Pool({ connectionString: URL, max: 2 });
    await admin.query(`CREATE TABLE ${table} (seq bigserial PRIMARY KEY, payload jsonb NOT NULL)`);

    /** Inserts the payloads in order, in one statement: seq follows the list. */
    async function insert(payloads: readonly JsonValue[]): Promise<void> {
      if (payloads.length === 0) return;
      const rows = payloads.map((_, i) => `($${i + 1}::jsonb)`).join(", ");
      await admin.query(
        `INSERT INTO ${table} (payload) VALUES ${rows}`,
        payloads.map((p) => JSON.stringify(p)),
      );
    }

    return {
      config: {
        connectionString: URL,
        table,
        column: "seq",
        payloadColumn: "payload",
        pollIntervalMs: 50,
      },
      // `where` is refused on purpose: a free SQL fragment in a config is an injection point.
      invalidConfig: { table, column: "seq", where: "true" },
      produce: (events: readonly CloudEvent[]) => insert(events as unknown as JsonValue[]),
      produceRaw: (payloads) => insert(payloads),
      async close() {
        await admin.query(`DROP TABLE IF EXISTS ${table}`);
        await admin.end();
      },
    };
  },
};
