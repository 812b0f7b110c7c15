/**
 * Usage across a cluster: every node reports the cluster's usage, each count once.
 *
 * - Publishes are counted by every node from the shared log itself (the publish meter reads
 *   the whole log), so each node's `publish` rows are the cluster's already: never shared.
 * - Everything else (delivery attempts, replays, redrives, streams) is counted by the node that
 *   did the work, in its own rows (`origin` ''). Those rows are shared: a TEMP trigger puts a
 *   row's running total in the outbox under `usage.<node>.<hour>.<meter>.<bus>.<rule>.<target>.<stream>`,
 *   and every other node keeps it as a row of that origin (a total, so taking it again changes
 *   nothing). Reports, the rollup and billing sum over origins.
 *
 * A busy row changes at every batch of attempts; it is shared every 2 s at most, and once more
 * after its last change (the trailing edge), so the cluster's totals lag by that much.
 */
import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import type { Clock, JsonValue } from "../../types.js";
import type { ResourceUsage } from "../billing-store.js";
import { createRollupMark } from "../sqlite/sqlite-usage.js";
import type { SharedKind } from "./shared-state.js";
import { installThrottleFunction, installWakeFunction } from "./trigger-functions.js";

const PREFIX = "usage";
/** How often one row is shared at most. */
const SHARE_EVERY_MS = 2_000;
const KEY_COLUMNS = ["hour_ms", "meter", "bus", "rule", "target", "stream"] as const;
const KEY_FUNCTION = "relaybus_usage_key";
const DUE_FUNCTION = "relaybus_usage_due";
const CHANGED_FUNCTION = "relaybus_usage_changed";

/** A row of `usage_hourly` as shared: a resource's usage in one hour (`hour_ms`, as the column). */
type UsageRow = ResourceUsage & { hour_ms: number };

export interface SharedUsageOptions {
  db: Database.Database;
  clock: Clock;
  /** Wakes the outbox's sender. */
  changed(): void;
}

/** This node's id in the cluster, made once and kept in the state file. */
export function clusterNodeId(db: Database.Database): string {
  const row = db.prepare<[], { id: string }>("SELECT id FROM cluster_node LIMIT 1").get();
  if (row !== undefined) return row.id;
  const id = randomUUID();
  db.prepare("INSERT INTO cluster_node (id) VALUES (?)").run(id);
  return id;
}

/** Installs the trigger and returns the kind to give `startSharedState`. */
export function shareUsage(options: SharedUsageOptions): SharedKind {
  const { db, clock } = options;
  const nodeId = clusterNodeId(db);
  const token = (value: string | number) => (value === "" ? "=" : Buffer.from(String(value), "utf8").toString("base64url"));
  const keyOf = (node: string, row: Pick<UsageRow, (typeof KEY_COLUMNS)[number]>) =>
    [PREFIX, token(node), ...KEY_COLUMNS.map((c) => token(row[c]))].join(".");

  db.function(KEY_FUNCTION, { deterministic: true, varargs: true }, (...values: unknown[]) => keyOf(nodeId, toKey(values)));
  installWakeFunction(db, CHANGED_FUNCTION, options.changed);
  const touch = db.prepare<unknown[]>(
    `UPDATE usage_hourly SET quantity = quantity WHERE hour_ms = ? AND meter = ? AND bus = ? AND rule = ? AND target = ? AND stream = ? AND origin = ''`,
  );
  const shareHeldBack = installThrottleFunction(db, DUE_FUNCTION, (values) => touch.run(...values));
  const columns = KEY_COLUMNS.map((c) => `NEW."${c}"`).join(", ");
  db.exec(`
    CREATE TEMP TRIGGER IF NOT EXISTS shared_usage_insert AFTER INSERT ON main.usage_hourly
      WHEN NEW.origin = '' AND NEW.meter != 'publish'
    BEGIN
      ${record(columns)}
    END;
    CREATE TEMP TRIGGER IF NOT EXISTS shared_usage_update AFTER UPDATE ON main.usage_hourly
      WHEN NEW.origin = '' AND NEW.meter != 'publish' AND ${DUE_FUNCTION}(${columns}, ${SHARE_EVERY_MS})
    BEGIN
      ${record(columns)}
    END;
  `);

  const replace = db.prepare<[number, string, string, string, string, string, string, number, number]>(
    `INSERT OR REPLACE INTO usage_hourly (hour_ms, meter, bus, rule, target, stream, origin, quantity, units)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const remove = db.prepare<[number, string, string, string, string, string, string]>(
    `DELETE FROM usage_hourly WHERE hour_ms = ? AND meter = ? AND bus = ? AND rule = ? AND target = ? AND stream = ? AND origin = ?`,
  );
  const markPending = createRollupMark(db, clock);
  const ownRows = db.prepare<[], UsageRow>(
    `SELECT hour_ms, meter, bus, rule, target, stream, quantity, units FROM usage_hourly WHERE origin = '' AND meter != 'publish'`,
  );
  const apply = db.transaction((origin: string, row: UsageRow | undefined, key: UsageRow) => {
    if (row === undefined) {
      remove.run(key.hour_ms, key.meter, key.bus, key.rule, key.target, key.stream, origin);
      return;
    }
    replace.run(row.hour_ms, row.meter, row.bus, row.rule, row.target, row.stream, origin, row.quantity, row.units);
    markPending(row.hour_ms);
  });

  return {
    prefix: PREFIX,
    apply(key, value) {
      const tokens = key.split(".");
      if (tokens.length !== 2 + KEY_COLUMNS.length) throw new Error(`"${key}" is not a usage key`);
      const origin = untoken(tokens[1]!);
      if (origin === nodeId) return; // this node's own row: it has it
      const keyRow = toKey(tokens.slice(2).map(untoken));
      apply(origin, value === null ? undefined : toUsageRow(value, key), keyRow);
    },
    localEntries: (known) =>
      ownRows
        .all()
        .map((row) => ({ key: keyOf(nodeId, row), value: row as unknown as JsonValue }))
        .filter((entry) => !known(entry.key)),
    beforeClose: shareHeldBack,
  };
}

/** The trigger body: the row's running total into the outbox, then wake the sender. */
function record(columns: string): string {
  const json = `json_object(${[...KEY_COLUMNS, "quantity", "units"].map((c) => `'${c}', NEW."${c}"`).join(", ")})`;
  return `INSERT INTO shared_state_outbox (key, value, created_at_ms)
        VALUES (${KEY_FUNCTION}(${columns}), ${json}, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      SELECT ${CHANGED_FUNCTION}();`;
}

function untoken(token: string): string {
  return token === "=" ? "" : Buffer.from(token, "base64url").toString("utf8");
}

/** Key column values (as text from a key, or as read) to a row's key. */
function toKey(values: readonly unknown[]): UsageRow {
  const [hourMs, meter, bus, rule, target, stream] = values.map(String);
  return { hour_ms: Number(hourMs), meter: meter!, bus: bus!, rule: rule!, target: target!, stream: stream!, quantity: 0, units: 0 };
}

function toUsageRow(value: JsonValue, key: string): UsageRow {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${key}: not a usage row`);
  const row = value as Record<string, JsonValue>;
  const numberOf = (c: string) => {
    if (typeof row[c] !== "number") throw new Error(`${key}: ${c} is not a number`);
    return row[c];
  };
  const textOf = (c: string) => {
    if (typeof row[c] !== "string") throw new Error(`${key}: ${c} is not text`);
    return row[c];
  };
  return {
    hour_ms: numberOf("hour_ms"),
    meter: textOf("meter"),
    bus: textOf("bus"),
    rule: textOf("rule"),
    target: textOf("target"),
    stream: textOf("stream"),
    quantity: numberOf("quantity"),
    units: numberOf("units"),
  };
}
