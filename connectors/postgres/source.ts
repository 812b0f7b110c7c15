/**
 * The postgres source: polls a table for rows after a position, in the order of a monotonic
 * column (a bigserial, or a timestamptz), and hands them over as CloudEvents. Relaybus keeps
 * the position (the last row's column value) once the sink confirmed a batch, and gives it
 * back on restart. A `channel` adds LISTEN/NOTIFY so that new rows need not wait for the poll.
 */
import { Client, Pool } from "pg";
import type { SourceBatch, SourceDefinition } from "../connector.js";
import { CONNECTION_STRING_SCHEMA, DEFAULT_CONNECTION_STRING, TABLE_SCHEMA } from "./sink.js";
import { describeFailure } from "./failures.js";
import { COLUMN_NAME_PATTERN, quoteName } from "./identifiers.js";
import { createRowReader, type ReadCursor } from "./row-reader.js";

export interface PostgresSourceConfig {
  /** Default `postgres://postgres@127.0.0.1:5432/test`. */
  connectionString?: string;
  /** The table, optionally schema-qualified, written as in SQL. */
  table: string;
  /** The monotonic column rows are read in order of (bigint/serial, or timestamptz). */
  column: string;
  /** The column whose value makes a wrapped event's id (default: `column`). */
  idColumn?: string;
  /** A column holding the payload (json, jsonb, text or bytea); default: the whole row as JSON. */
  payloadColumn?: string;
  /** Wait after a read found nothing (default 500 ms). */
  pollIntervalMs?: number;
  /** A LISTEN/NOTIFY channel that wakes the poller at once (optional). */
  channel?: string;
  /** Read only rows whose timestamp column is at least this old (ms; timestamp columns only). */
  settleMs?: number;
  /** Statement and connect timeout (default 10,000 ms). */
  timeoutMs?: number;
}

const DEFAULT_POLL_INTERVAL_MS = 500;
const DEFAULT_TIMEOUT_MS = 10_000;
/** Batches handed over and not yet confirmed: one being written while the next is read. */
const MAX_BATCHES_IN_FLIGHT = 2;
/** `backlog()` counts at most this many rows, so that it stays cheap on a large table. */
const BACKLOG_CAP = 10_000;

export const postgresSource: SourceDefinition<PostgresSourceConfig> = {
  name: "postgres",
  kind: "source",
  description:
    "Reads new rows of a PostgreSQL table in the order of a monotonic column, resuming from the saved position",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["table", "column"],
    properties: {
      connectionString: CONNECTION_STRING_SCHEMA,
      table: TABLE_SCHEMA,
      column: {
        type: "string",
        pattern: COLUMN_NAME_PATTERN,
        description: "monotonic column rows are read in order of",
      },
      idColumn: {
        type: "string",
        pattern: COLUMN_NAME_PATTERN,
        description: "column of the wrapped event id (default: column)",
      },
      payloadColumn: {
        type: "string",
        pattern: COLUMN_NAME_PATTERN,
        description: "payload column (default: the whole row as JSON)",
      },
      pollIntervalMs: {
        type: "integer",
        minimum: 1,
        description: "wait after an empty read, in ms (default 500)",
      },
      channel: {
        type: "string",
        pattern: COLUMN_NAME_PATTERN,
        description: "LISTEN/NOTIFY channel that wakes the poller (optional)",
      },
      settleMs: {
        type: "integer",
        minimum: 1,
        description: "read only rows whose timestamp column is this old, in ms (optional)",
      },
      timeoutMs: {
        type: "integer",
        minimum: 1,
        description: "statement and connect timeout in ms (default 10000)",
      },
    },
  },
  create(config, context) {
    const { signal, logger } = context;
    const connectionString = config.connectionString ?? DEFAULT_CONNECTION_STRING;
    const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const pollIntervalMs = config.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    const connection = {
      connectionString,
      statement_timeout: timeoutMs,
      connectionTimeoutMillis: timeoutMs,
      keepAlive: true,
      application_name: `relaybus/${context.streamName}`.slice(0, 63),
    };
    // One connection reads; the second serves backlog() while a read runs.
    const pool = new Pool({ ...connection, max: 2 });
    pool.on("error", (error) =>
      logger.warn("postgres source: idle connection lost", {
        table: config.table,
        error: describeFailure(error),
      }),
    );
    let listener: Client | undefined;
    let closing: Promise<void> | undefined;

    /** Stops waiting for a query when the stream aborts; the query itself runs out on its own. */
    function untilAborted<T>(promise: Promise<T>): Promise<T> {
      promise.catch(() => {});
      return new Promise<T>((resolve, reject) => {
        const onAbort = () => reject(new Error("aborted"));
        if (signal.aborted) onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
      });
    }

    const column = quoteName(config.column);
    const reader = createRowReader((text, values) => untilAborted(pool.query(text, values)), {
      table: config.table,
      quotedTable: quoteName(config.table),
      column,
      idColumn: config.idColumn === undefined ? column : quoteName(config.idColumn),
      payloadColumn:
        config.payloadColumn === undefined ? undefined : quoteName(config.payloadColumn),
      settleMs: config.settleMs,
    });
    let cursor: ReadCursor = { after: context.position };
    const stopped = new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true }),
    );

    // A notification or a failed batch ends the wait between polls early.
    let notified = false;
    let wake: (() => void) | undefined;
    function pause(ms: number): Promise<void> {
      if (notified || signal.aborted) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done, { once: true });
        wake = done;
      });
    }

    async function listen(channel: string): Promise<void> {
      listener = new Client(connection);
      listener.on("notification", () => {
        notified = true;
        wake?.();
      });
      // Losing the listening connection costs latency, not rows: polling goes on.
      listener.on("error", (error) =>
        logger.warn("postgres source: LISTEN connection lost; polling only", {
          table: config.table,
          error: describeFailure(error),
        }),
      );
      await untilAborted(listener.connect());
      await untilAborted(listener.query(`LISTEN ${quoteName(channel)}`));
    }

    const fail = (error: unknown) =>
      new Error(`postgres source ${config.table}: ${describeFailure(error)}`, { cause: error });

    return {
      async run(handle) {
        try {
          await reader.prepare();
          if (config.channel !== undefined) await listen(config.channel);
        } catch (error) {
          if (signal.aborted) return;
          throw fail(error);
        }
        const inFlight: Promise<void>[] = [];
        let failure: { error: unknown } | undefined;
        while (!signal.aborted && failure === undefined) {
          if (inFlight.length >= MAX_BATCHES_IN_FLIGHT) {
            await Promise.race([inFlight.shift(), stopped]);
            continue;
          }
          notified = false;
          let result;
          try {
            result = await reader.read(cursor, context.maxBatchEvents);
          } catch (error) {
            if (signal.aborted) return;
            throw fail(error);
          }
          cursor = result.cursor;
          if (result.events.length > 0) {
            const batch: SourceBatch =
              result.position === undefined
                ? { events: result.events }
                : { events: result.events, position: result.position };
            inFlight.push(
              handle(batch).then(
                () => {},
                (error: unknown) => {
                  failure ??= { error };
                  wake?.();
                },
              ),
            );
          }
          if (result.idle) await pause(pollIntervalMs);
        }
        // The stream stopped, or failed a batch: then the position it keeps is the last
        // confirmed one, and the next run reads again from there.
        if (failure !== undefined && !signal.aborted) throw failure.error;
      },
      async backlog() {
        try {
          return await reader.countAfter(cursor.after, BACKLOG_CAP);
        } catch {
          return undefined;
        }
      },
      close() {
        closing ??= Promise.all([pool.end(), listener?.end()]).then(() => {});
        return closing;
      },
    };
  },
};
