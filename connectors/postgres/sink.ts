/**
 * The postgres sink: writes each batch into a table in one transaction, one row per event,
 * with `INSERT ... ON CONFLICT (id) DO NOTHING` so that a retried batch, part of which was
 * stored before, is not stored twice. Arrival order is kept by the row order of the insert,
 * which the default layout's `seq bigserial` column records.
 */
import { Pool, type PoolClient } from "pg";
import { SinkError, type SinkDefinition } from "../connector.js";
import type { CloudEvent } from "../../src/types.js";
import { describeFailure, isRetryable } from "./failures.js";
import { COLUMN_NAME_PATTERN, TABLE_NAME_PATTERN, quoteName } from "./identifiers.js";

/** The event attributes the sink can store, each in a column of its own. */
export const EVENT_FIELDS = ["id", "source", "type", "time", "subject", "data", "event"] as const;
export type EventField = (typeof EVENT_FIELDS)[number];

/** Which column holds which event attribute (`event` is the whole structured CloudEvent). */
export type ColumnMapping = { id: string } & Partial<Record<Exclude<EventField, "id">, string>>;

export interface PostgresSinkConfig {
  /** Default `postgres://postgres@127.0.0.1:5432/test`. */
  connectionString?: string;
  /** The table, optionally schema-qualified, written as in SQL (`sales."Orders"`). */
  table: string;
  /** Default: each attribute in the column of its own name (`id`, `source`, ..., `event`). */
  columns?: ColumnMapping;
  /** Create the table (with `seq bigserial` and the mapped columns) when it is absent. Default false. */
  createTable?: boolean;
  /** Statement and connect timeout (default 10,000 ms). */
  timeoutMs?: number;
}

export const DEFAULT_CONNECTION_STRING = "postgres://postgres@127.0.0.1:5432/test";

/** The `connectionString` field of both postgres configs' schemas. */
export const CONNECTION_STRING_SCHEMA = {
  type: "string",
  pattern: "^postgres(ql)?://",
  description: `libpq connection URI (default ${DEFAULT_CONNECTION_STRING})`,
} as const;

/** The `table` field of both postgres configs' schemas. */
export const TABLE_SCHEMA = {
  type: "string",
  pattern: TABLE_NAME_PATTERN,
  description: "table, optionally schema-qualified, written as in SQL",
} as const;
const DEFAULT_TIMEOUT_MS = 10_000;
/** One batch is written at a time; a second connection covers a retry racing a dying one. */
const POOL_SIZE = 2;
/** Rows per INSERT statement, well under PostgreSQL's 65,535 bind parameters. */
const ROWS_PER_STATEMENT = 1_000;

const DEFAULT_COLUMNS: ColumnMapping = {
  id: "id",
  source: "source",
  type: "type",
  time: "time",
  subject: "subject",
  data: "data",
  event: "event",
};

/** The SQL type of each attribute's column in a table `createTable` makes. */
const COLUMN_TYPES: Record<EventField, string> = {
  id: "text PRIMARY KEY",
  source: "text NOT NULL",
  type: "text NOT NULL",
  time: "timestamptz",
  subject: "text",
  data: "jsonb",
  event: "jsonb NOT NULL",
};

/** The value an event gives each attribute's column; parameters are typed by their column. */
const COLUMN_VALUES: Record<EventField, (event: CloudEvent) => string | null> = {
  id: (e) => e.id,
  source: (e) => e.source,
  type: (e) => e.type,
  time: (e) => e.time ?? null,
  subject: (e) => e.subject ?? null,
  data: (e) => (e.data === undefined ? null : JSON.stringify(e.data)),
  event: (e) => JSON.stringify(e),
};

const columnSchema = { type: "string", pattern: COLUMN_NAME_PATTERN };

export const postgresSink: SinkDefinition<PostgresSinkConfig> = {
  name: "postgres",
  kind: "sink",
  description:
    "Inserts each event as a row of a PostgreSQL table, one transaction per batch, deduplicated on the event id",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["table"],
    properties: {
      connectionString: CONNECTION_STRING_SCHEMA,
      table: TABLE_SCHEMA,
      columns: {
        type: "object",
        additionalProperties: false,
        required: ["id"],
        description:
          "column of each event attribute; only the listed ones are written (default: all, same names). The id column needs a unique index",
        properties: Object.fromEntries(EVENT_FIELDS.map((field) => [field, columnSchema])),
      },
      createTable: { type: "boolean", description: "create the table when absent (default false)" },
      timeoutMs: {
        type: "integer",
        minimum: 1,
        description: "statement and connect timeout in ms (default 10000)",
      },
    },
  },
  create(config, context) {
    const table = quoteName(config.table);
    const mapping = config.columns ?? DEFAULT_COLUMNS;
    const fields = EVENT_FIELDS.filter((field) => mapping[field] !== undefined);
    const columns = fields.map((field) => quoteName(mapping[field] ?? field));
    const idColumn = quoteName(mapping.id);
    const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const pool = new Pool({
      connectionString: config.connectionString ?? DEFAULT_CONNECTION_STRING,
      max: POOL_SIZE,
      statement_timeout: timeoutMs,
      connectionTimeoutMillis: timeoutMs,
      keepAlive: true,
      application_name: `relaybus/${context.streamName}`.slice(0, 63),
    });
    // An idle connection the server drops emits here; unheard, it would end the process.
    pool.on("error", (error) =>
      context.logger.warn("postgres sink: idle connection lost", {
        table: config.table,
        error: describeFailure(error),
      }),
    );

    const createSql =
      `CREATE TABLE IF NOT EXISTS ${table} (seq bigserial NOT NULL, ` +
      fields.map((field, i) => `${columns[i]} ${COLUMN_TYPES[field]}`).join(", ") +
      ")";
    let tableReady = !config.createTable;
    let closing: Promise<void> | undefined;

    const fail = (error: unknown): SinkError =>
      new SinkError(`postgres sink ${config.table}: ${describeFailure(error)}`, {
        retryable: isRetryable(error),
        cause: error,
      });

    async function insert(client: PoolClient, events: readonly CloudEvent[]): Promise<void> {
      const values: (string | null)[] = [];
      const rows = events.map((event) => {
        const placeholders = fields.map((field) => {
          values.push(COLUMN_VALUES[field](event));
          return `$${values.length}`;
        });
        return `(${placeholders.join(", ")})`;
      });
      await client.query(
        `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${rows.join(", ")} ON CONFLICT (${idColumn}) DO NOTHING`,
        values,
      );
    }

    return {
      async write(events) {
        if (events.length === 0) return;
        if (closing)
          throw new SinkError(`postgres sink ${config.table}: closed`, { retryable: true });
        let client: PoolClient;
        try {
          client = await pool.connect();
        } catch (error) {
          throw fail(error);
        }
        let failure: unknown;
        try {
          if (!tableReady) {
            await client.query(createSql);
            tableReady = true;
          }
          await client.query("BEGIN");
          for (let start = 0; start < events.length; start += ROWS_PER_STATEMENT) {
            await insert(client, events.slice(start, start + ROWS_PER_STATEMENT));
          }
          await client.query("COMMIT");
        } catch (error) {
          failure = error;
          throw fail(error);
        } finally {
          // A connection that failed mid-transaction is dropped rather than rolled back and
          // reused: after a timeout or a lost socket its state is not worth trusting.
          client.release(failure === undefined ? undefined : true);
        }
      },
      close() {
        closing ??= pool.end();
        return closing;
      },
    };
  },
};
