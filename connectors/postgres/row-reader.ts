/**
 * Reads a table in the order of a monotonic column, after a position, as batches of
 * CloudEvents. The position is the last handed-over row's column value as text, which
 * PostgreSQL parses back into the column's own type when it is compared.
 *
 * Rows that share a column value (a timestamp set by `now()` is the same for every row of a
 * transaction) are never split between a batch that carries that value as its position and
 * a later one, since `column > position` would then skip the rest of them: a batch that
 * would end inside such a group ends before it; a group larger than a whole batch is handed
 * over in pages, and only its last page carries the position (so a restart in the middle of
 * it reads the whole group again, at least once).
 */
import type { QueryResult } from "pg";
import type { CloudEvent } from "../../src/types.js";
import { isCloudEvent, payloadJson, rowEvent } from "./row-event.js";

/** Runs one query (the source adds its pool, timeouts and abort). */
export type RunQuery = (text: string, values: unknown[]) => Promise<QueryResult>;

/** Where reading goes on: after a position, and possibly inside a group of equal values. */
export interface ReadCursor {
  after: string | undefined;
  /** Set while handing over, page by page, a group of rows sharing the column value `value`. */
  group?: { value: string; offset: number };
}

export interface ReadResult {
  events: CloudEvent[];
  /** The position to save once `events` are confirmed; undefined in the middle of a group. */
  position: string | undefined;
  cursor: ReadCursor;
  /** Nothing more to read now: the caller waits before reading again. */
  idle: boolean;
}

export interface RowReaderOptions {
  /** The table as configured (for ids and the event source) and as quoted SQL. */
  table: string;
  quotedTable: string;
  /** Quoted column names. */
  column: string;
  idColumn: string;
  payloadColumn: string | undefined;
  /** Read only rows whose (timestamp) column is at least this old. */
  settleMs: number | undefined;
}

export interface RowReader {
  /**
   * Checks that the table and columns exist (rejecting with the server's error when not) and
   * learns the column's type: the settle time needs a timestamp, and a timestamptz column
   * gives wrapped events their time.
   */
  prepare(): Promise<void>;
  read(cursor: ReadCursor, limit: number): Promise<ReadResult>;
  /** How many rows follow `after`, counting at most `cap`. */
  countAfter(after: string | undefined, cap: number): Promise<number>;
}

const TIMESTAMPTZ_OID = 1184;
const TIMESTAMP_OIDS = new Set([1114, TIMESTAMPTZ_OID]);

interface Row {
  relaybus_payload: unknown;
  relaybus_position: string;
  relaybus_id: string | null;
  relaybus_time?: string | null;
}

export function createRowReader(query: RunQuery, options: RowReaderOptions): RowReader {
  const { quotedTable, column, idColumn, payloadColumn } = options;
  let withTime = false;
  const payload = payloadColumn === undefined ? "row_to_json(r)" : `r.${payloadColumn}`;
  const sameId = idColumn === column;

  function select(
    where: string[],
    values: unknown[],
    page: { orderBy: string; limit: number; offset?: number },
  ): Promise<QueryResult> {
    const conditions = [...where];
    if (options.settleMs !== undefined) {
      conditions.push(
        `r.${column} <= clock_timestamp() - make_interval(secs => $${values.push(options.settleMs / 1_000)})`,
      );
    }
    const time = withTime ? `, to_json(r.${column}) #>> '{}' AS relaybus_time` : "";
    let text =
      `SELECT ${payload} AS relaybus_payload, (r.${column})::text AS relaybus_position, (r.${idColumn})::text AS relaybus_id${time} ` +
      `FROM ${quotedTable} AS r${conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : ""} ` +
      `ORDER BY ${page.orderBy} LIMIT $${values.push(page.limit)}`;
    if (page.offset !== undefined) text += ` OFFSET $${values.push(page.offset)}`;
    return query(text, values);
  }

  function toEvents(result: QueryResult, count: number): CloudEvent[] {
    const payloadOid = result.fields[0]?.dataTypeID ?? 0;
    return (result.rows as Row[]).slice(0, count).map((row) => {
      const data =
        payloadColumn === undefined
          ? payloadJson(row.relaybus_payload, 114)
          : payloadJson(row.relaybus_payload, payloadOid);
      if (payloadColumn !== undefined && isCloudEvent(data)) return data;
      return rowEvent({
        table: options.table,
        id: row.relaybus_id ?? row.relaybus_position,
        time: row.relaybus_time ?? undefined,
        data,
      });
    });
  }

  async function readGroup(
    cursor: ReadCursor & { group: { value: string; offset: number } },
    limit: number,
  ): Promise<ReadResult> {
    const { value, offset } = cursor.group;
    // ctid breaks ties within the group so that the pages do not overlap.
    const orderBy = `${sameId ? "" : `r.${idColumn}, `}r.ctid`;
    const result = await select([`r.${column} = $1`], [value], {
      orderBy,
      limit: limit + 1,
      offset,
    });
    if (result.rows.length > limit) {
      return {
        events: toEvents(result, limit),
        position: undefined,
        cursor: { after: cursor.after, group: { value, offset: offset + limit } },
        idle: false,
      };
    }
    return {
      events: toEvents(result, limit),
      position: value,
      cursor: { after: value },
      idle: false,
    };
  }

  return {
    async prepare() {
      const result = await query(
        `SELECT r.${column}, r.${idColumn}${payloadColumn === undefined ? "" : `, r.${payloadColumn}`} FROM ${quotedTable} AS r LIMIT 0`,
        [],
      );
      const oid = result.fields[0]?.dataTypeID ?? 0;
      if (options.settleMs !== undefined && !TIMESTAMP_OIDS.has(oid)) {
        throw new Error(
          `settleMs needs a timestamp or timestamptz column; ${options.table}.${column} is not one`,
        );
      }
      withTime = oid === TIMESTAMPTZ_OID;
    },

    async read(cursor, limit) {
      if (cursor.group !== undefined) return readGroup({ ...cursor, group: cursor.group }, limit);
      const values: unknown[] = [];
      const where: string[] = [];
      if (cursor.after !== undefined) where.push(`r.${column} > $${values.push(cursor.after)}`);
      const result = await select(where, values, {
        orderBy: `r.${column}${sameId ? "" : `, r.${idColumn}`}`,
        limit: limit + 1,
      });
      const rows = result.rows as Row[];
      if (rows.length === 0) return { events: [], position: undefined, cursor, idle: true };
      let count = Math.min(rows.length, limit);
      const last = rows[count - 1]?.relaybus_position;
      if (rows.length > limit && rows[limit]?.relaybus_position === last && last !== undefined) {
        // The batch would end inside a group of equal values: end it before the group, or,
        // when the group fills the whole batch, hand the group over page by page.
        count = rows.findIndex((row) => row.relaybus_position === last);
        if (count === 0)
          return {
            events: [],
            position: undefined,
            cursor: { after: cursor.after, group: { value: last, offset: 0 } },
            idle: false,
          };
      }
      const position = rows[count - 1]?.relaybus_position;
      return {
        events: toEvents(result, count),
        position,
        cursor: { after: position },
        idle: rows.length <= limit,
      };
    },

    async countAfter(after, cap) {
      const values: unknown[] = [];
      const where = after === undefined ? "" : `WHERE r.${column} > $${values.push(after)}`;
      values.push(cap);
      const result = await query(
        `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${quotedTable} AS r ${where} LIMIT $${values.length}) AS s`,
        values,
      );
      return (result.rows[0] as { n: number } | undefined)?.n ?? 0;
    },
  };
}
