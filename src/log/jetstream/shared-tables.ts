/**
 * Tables every node of a cluster shares row by row, replicated by SQLite triggers: dead
 * letters, targets' signing secrets and target states; API keys; API streams, their
 * runtimes (the leader's progress) and schedules' positions. A dead letter made on one node is
 * listed, redriven or purged through any node; a secret or a disabled target set through one
 * node signs or stops deliveries on all.
 *
 * These tables are written by many statements inside the stores' own transactions
 * (`sqlite-deliveries.ts`, `sqlite-dead-letters.ts`, ...), so instead of wrapping every store
 * method, TEMP triggers on this node's state connection (jetstream mode only; the SQLite
 * storage never installs them) record each inserted, updated or deleted row in the outbox
 * (`sqlite-outbox.ts`). A trigger runs inside the writer's transaction: the row and its
 * outbox entry commit together or not at all, which is the outbox's guarantee. The sender
 * and the watch of `shared-state.ts` do the rest, as for buses and rules.
 *
 * Keys: `<prefix>.<token>...`, one token per primary-key column, each the value's UTF-8 in
 * base64url without padding (`=` for the empty string), so that any text makes a valid,
 * reversible key:
 *
 * - `deadletter.<id>` (the delivery id)
 * - `secret.<bus>.<rule>.<target>.<id>`
 * - `targetstate.<bus>.<rule>.<target>`
 * - `apikey.<id>`, `streamdef.<name>`, `streamruntime.<name>`, `schedulepos.<name>`
 *
 * Values: the row as a JSON object of every column of the table, as SQLite's `json_object`
 * makes it: INTEGER columns are numbers, TEXT columns strings (also those holding JSON, such
 * as a dead letter's `request`, so that the text comes back byte for byte), NULL is null. A
 * deleted row is a deletion of its key. Applying a change is `INSERT OR REPLACE` of that row,
 * or a `DELETE` by key, with the triggers held off (an applied change must not go back to the
 * outbox and round again); a row already as the change says is left alone, so that a node's
 * own changes coming back from the bucket, and every row at start, cost a read and no write.
 */
import type Database from "better-sqlite3";
import type { JsonValue } from "../../types.js";
import type { SqliteTargetSecrets } from "../sqlite/sqlite-target-secrets.js";
import type { SqliteTargetStates } from "../sqlite/sqlite-target-states.js";
import type { SqliteApiKeys } from "../sqlite/sqlite-api-keys.js";
import type { SharedKind } from "./shared-state.js";
import { installThrottleFunction, installWakeFunction } from "./trigger-functions.js";

/** One table shared row by row. */
interface SharedTable {
  /** The table in the state file. */
  table: string;
  /** Its rows' keys start with `<prefix>.`. */
  prefix: string;
  /** The columns that identify a row, in the key's order (the primary key, or `id`). */
  keyColumns: readonly string[];
  /** After a change from the cluster was written, with the row's key values. */
  afterApply?(key: readonly string[]): void;
  /**
   * An extra condition (SQL over `NEW` and `OLD`) for sharing an update: rows updated often
   * share only their meaningful changes, and the rest at most every so often.
   */
  updateWhen?: string;
  /**
   * What to write for a change from the cluster, given the local row (absent: the change as
   * it is); undefined writes nothing. For a table one node writes and the others follow.
   */
  merge?(local: Record<string, unknown> | undefined, incoming: Record<string, unknown>): Record<string, unknown> | undefined;
  /** See `SharedKind.takesOthersChangesOverOwn`. */
  takesOthersChangesOverOwn?(): boolean;
}

export interface SharedTablesOptions {
  /** This node's state file, migrated; the triggers are made on this connection only. */
  db: Database.Database;
  /** Told when a target's secrets changed through another node (it caches them). */
  targetSecrets: SqliteTargetSecrets;
  /** Told when a target's state changed through another node (it caches it). */
  targetStates: SqliteTargetStates;
  /** Told when an API key changed through another node (it caches them). */
  apiKeys: SqliteApiKeys;
  /**
   * Whether this node leads (runs the streams): the leader keeps its own streams' progress
   * and takes only their desired state (paused or running) from other nodes.
   */
  isLeader(): boolean;
  /** Wakes the outbox's sender; called once the writing transaction is over. */
  changed(): void;
}

/** Installs the triggers and returns the kinds to give `startSharedState`. */
export function shareStateTables(options: SharedTablesOptions): SharedKind[] {
  const { targetSecrets, targetStates } = options;
  const tables: SharedTable[] = [
    { table: "dead_letters", prefix: "deadletter", keyColumns: ["id"] },
    {
      table: "target_secrets",
      prefix: "secret",
      keyColumns: ["bus", "rule", "target_id", "id"],
      afterApply: ([bus, rule, targetId]) => targetSecrets.forgetCached(bus!, rule!, targetId!),
    },
    {
      table: "target_states",
      prefix: "targetstate",
      keyColumns: ["bus", "rule", "target_id"],
      afterApply: ([bus, rule, targetId]) =>
        targetStates.forgetCached({ bus: bus!, rule: rule!, targetId: targetId! }),
    },
  ];
  tables.push(
    { table: "stream_definitions", prefix: "streamdef", keyColumns: ["name"] },
    {
      // Written by the leader at every batch: its progress is shared every 2 s at most (a new
      // leader resumes from there), a change of desired or actual state at once.
      table: "stream_runtimes",
      prefix: "streamruntime",
      keyColumns: ["name"],
      updateWhen: `NEW.desired IS NOT OLD.desired OR NEW.state IS NOT OLD.state OR NEW.reason IS NOT OLD.reason
        OR ${DUE_FUNCTION}('stream_runtimes', NEW.name, ${STREAM_PROGRESS_SHARE_MS})`,
      merge: (local, incoming) =>
        options.isLeader() && local !== undefined ? { ...local, desired: incoming.desired } : incoming,
      // The leader takes a pause (the desired state, as merged above) at once, though its own
      // progress is on its way at almost every moment; its own changes coming back are still
      // told apart and left out, since they carry the desired state it had before.
      takesOthersChangesOverOwn: () => options.isLeader(),
    },
    {
      // A key made or revoked through any node works, or stops working, on all. Its last use
      // is this node's own: not shared (it changes at every request), and never moved back.
      table: "api_keys",
      prefix: "apikey",
      keyColumns: ["id"],
      updateWhen: `NEW.revoked_at_ms IS NOT OLD.revoked_at_ms OR NEW.expires_at_ms IS NOT OLD.expires_at_ms
        OR NEW.scopes IS NOT OLD.scopes OR NEW.name IS NOT OLD.name OR NEW.rate_per_second IS NOT OLD.rate_per_second`,
      merge: (local, incoming) => ({
        ...incoming,
        last_used_at_ms: Math.max(Number(local?.last_used_at_ms ?? 0), Number(incoming.last_used_at_ms ?? 0)) || null,
      }),
      afterApply: () => options.apiKeys.forgetCached(),
    },
    {
      // Written by the leader at each fire: a new leader fires on from the last one.
      table: "schedule_positions",
      prefix: "schedulepos",
      keyColumns: ["name"],
      merge: (local, incoming) => (options.isLeader() && local !== undefined ? undefined : incoming),
    },
  );
  const flushHeldBack = installFunctions(options.db, options.changed);
  const kinds = tables.map((table) => shareTable(options.db, table));
  return kinds.map((kind) => (kind.prefix === "streamruntime" ? { ...kind, beforeClose: flushHeldBack } : kind));
}

/** The key of a row: its prefix and one token per key value. */
export function sharedRowKey(prefix: string, values: readonly string[]): string {
  return [prefix, ...values.map(tokenOf)].join(".");
}

/** The key values of {@link sharedRowKey}'s key; throws on a key of another shape. */
export function keyValuesOf(key: string, prefix: string, count: number): string[] {
  const tokens = key.split(".");
  if (tokens.shift() !== prefix || tokens.length !== count || !tokens.every(isToken)) {
    throw new Error(`"${key}" is not a key of ${prefix} (${count} values)`);
  }
  return tokens.map((token) =>
    token === "=" ? "" : Buffer.from(token, "base64url").toString("utf8"),
  );
}

const tokenOf = (value: string) =>
  value === "" ? "=" : Buffer.from(value, "utf8").toString("base64url");
const isToken = (token: string) => token === "=" || /^[A-Za-z0-9_-]+$/.test(token);

/** The flag table that holds the triggers off while a change from the cluster is written. */
const APPLYING = "temp.shared_tables_applying";
/** The key function the triggers call: `(prefix, value, ...)` → key. */
const KEY_FUNCTION = "relaybus_shared_row_key";
/** The function the triggers call after recording a change: wakes the sender. */
const CHANGED_FUNCTION = "relaybus_shared_row_changed";
/** `(table, key, ms)`: whether the row is due to be shared (see `installThrottleFunction`). */
const DUE_FUNCTION = "relaybus_shared_due";
/** How often a stream's progress is shared, at most. */
const STREAM_PROGRESS_SHARE_MS = 2_000;

/** Installs the triggers' functions; returns what shares the rows held back now. */
function installFunctions(db: Database.Database, changed: () => void): () => void {
  db.exec(`CREATE TEMP TABLE IF NOT EXISTS shared_tables_applying (applying INTEGER NOT NULL)`);
  db.function(
    KEY_FUNCTION,
    { deterministic: true, varargs: true },
    (prefix: unknown, ...values: unknown[]) => sharedRowKey(String(prefix), values.map(String)),
  );
  installWakeFunction(db, CHANGED_FUNCTION, changed);
  // Tables shared with a throttle have a one-column key, `name`.
  return installThrottleFunction(db, DUE_FUNCTION, ([table, key]) =>
    db.prepare(`UPDATE "${String(table)}" SET name = name WHERE name = ?`).run(String(key)),
  );
}

function shareTable(db: Database.Database, spec: SharedTable): SharedKind {
  const { table, prefix, keyColumns } = spec;
  const columns = db
    .prepare<[], { name: string }>(
      `SELECT name FROM pragma_table_info('${table}', 'main') ORDER BY cid`,
    )
    .all()
    .map((c) => c.name);
  if (columns.length === 0) throw new Error(`shared table ${table} is missing from the state file`);
  const quoted = (c: string) => `"${c}"`;
  const keyOf = (row: "NEW" | "OLD") =>
    `${KEY_FUNCTION}('${prefix}', ${keyColumns.map((c) => `${row}.${quoted(c)}`).join(", ")})`;
  const jsonOf = (row: string) =>
    `json_object(${columns.map((c) => `'${c}', ${row}${quoted(c)}`).join(", ")})`;
  const now = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
  const record = (key: string, value: string) =>
    `INSERT INTO shared_state_outbox (key, value, created_at_ms) VALUES (${key}, ${value}, ${now});`;
  const when = `WHEN NOT EXISTS (SELECT 1 FROM ${APPLYING})`;
  const keyMoved = keyColumns.map((c) => `OLD.${quoted(c)} IS NOT NEW.${quoted(c)}`).join(" OR ");
  db.exec(`
    CREATE TEMP TRIGGER IF NOT EXISTS shared_${table}_insert AFTER INSERT ON main.${table} ${when}
    BEGIN
      ${record(keyOf("NEW"), jsonOf("NEW."))}
      SELECT ${CHANGED_FUNCTION}();
    END;
    CREATE TEMP TRIGGER IF NOT EXISTS shared_${table}_update AFTER UPDATE ON main.${table} ${when}
      ${spec.updateWhen === undefined ? "" : `AND (${keyMoved} OR ${spec.updateWhen})`}
    BEGIN
      INSERT INTO shared_state_outbox (key, value, created_at_ms)
        SELECT ${keyOf("OLD")}, NULL, ${now} WHERE ${keyMoved};
      ${record(keyOf("NEW"), jsonOf("NEW."))}
      SELECT ${CHANGED_FUNCTION}();
    END;
    CREATE TEMP TRIGGER IF NOT EXISTS shared_${table}_delete AFTER DELETE ON main.${table} ${when}
    BEGIN
      ${record(keyOf("OLD"), "NULL")}
      SELECT ${CHANGED_FUNCTION}();
    END;
  `);

  const byKey = keyColumns.map((c) => `${quoted(c)} = ?`).join(" AND ");
  const selectKeys = db
    .prepare<[], string[]>(`SELECT ${keyColumns.map(quoted).join(", ")} FROM ${table}`)
    .raw();
  const selectJson = db
    .prepare<string[], string>(`SELECT ${jsonOf("")} FROM ${table} WHERE ${byKey}`)
    .pluck();
  const selectRow = db.prepare<string[], Record<string, unknown>>(
    `SELECT ${columns.map(quoted).join(", ")} FROM ${table} WHERE ${byKey}`,
  );
  const replace = db.prepare<unknown[]>(
    `INSERT OR REPLACE INTO ${table} (${columns.map(quoted).join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
  );
  const remove = db.prepare<string[]>(`DELETE FROM ${table} WHERE ${byKey}`);
  const holdTriggers = db.prepare(`INSERT INTO ${APPLYING} (applying) VALUES (1)`);
  const releaseTriggers = db.prepare(`DELETE FROM ${APPLYING}`);
  /** Runs `write` with the triggers held off, in one transaction; true when it changed a row. */
  const untriggered = db.transaction((write: () => number): boolean => {
    holdTriggers.run();
    try {
      return write() > 0;
    } finally {
      releaseTriggers.run();
    }
  });

  return {
    prefix,
    ...(spec.takesOthersChangesOverOwn === undefined ? {} : { takesOthersChangesOverOwn: spec.takesOthersChangesOverOwn }),
    apply(key, value) {
      const keyValues = keyValuesOf(key, prefix, keyColumns.length);
      let written: boolean;
      if (value === null) {
        written = untriggered(() => remove.run(...keyValues).changes);
      } else {
        let row = rowOf(value, columns, key);
        keyColumns.forEach((c, i) => {
          if (row[columns.indexOf(c)] !== keyValues[i])
            throw new Error(`${key}: its value's ${c} does not match the key`);
        });
        const current = selectRow.get(...keyValues);
        if (spec.merge !== undefined) {
          const merged = spec.merge(current, Object.fromEntries(columns.map((c, i) => [c, row[i]])));
          if (merged === undefined) return;
          row = rowOf(merged as JsonValue, columns, key);
        }
        if (current !== undefined && columns.every((c, i) => current[c] === row[i])) return;
        written = untriggered(() => replace.run(...row).changes);
      }
      if (written) spec.afterApply?.(keyValues);
    },
    localEntries(known) {
      // Keys first, without the rows: at every start all of them are usually known already.
      const missing = selectKeys
        .all()
        .filter((values) => !known(sharedRowKey(prefix, values.map(String))));
      return missing.flatMap((values) => {
        const json = selectJson.get(...values);
        return json === undefined
          ? []
          : [
              {
                key: sharedRowKey(prefix, values.map(String)),
                value: JSON.parse(json) as JsonValue,
              },
            ];
      });
    },
  };
}

/** A change's value as the table's column values, in `columns`' order; throws on a wrong shape. */
function rowOf(
  value: JsonValue,
  columns: readonly string[],
  key: string,
): Array<string | number | null> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${key}: a row must be a JSON object`);
  }
  return columns.map((c) => {
    const v = value[c];
    if (v === undefined || v === null) return null;
    if (typeof v === "string" || typeof v === "number") return v;
    throw new Error(`${key}: column ${c} holds ${JSON.stringify(v)}, not a string, number or null`);
  });
}
