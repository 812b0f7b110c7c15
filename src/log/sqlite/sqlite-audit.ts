/**
 * The audit log on SQLite (`audit_log` of the state file, migration 11).
 *
 * Ids come from `AUTOINCREMENT`, so an id is never reused even after retention deleted the
 * newest rows' predecessors, and "newest first" is "highest id first": exact, where times
 * may tie within a millisecond. `before` and `after` are JSON text; the actor is split into
 * its kind, key id and key name so that `?actor=` can match any of them with an index-free
 * comparison (the table is small next to the log, and a query stops at its limit).
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type Database from "better-sqlite3";
import type {
  AuditActor,
  AuditEntry,
  AuditQuery,
  AuditStore,
  NewAuditEntry,
} from "../audit-store.js";
import { guardStorage } from "./storage-error.js";

/** Rows deleted per retention batch; the event loop runs between batches. */
const PRUNE_BATCH = 1_000;

interface AuditRow {
  id: number;
  atMs: number;
  actorKind: string;
  actorId: string | null;
  actorName: string | null;
  action: string;
  resource: string;
  before: string | null;
  after: string | null;
  requestId: string | null;
  outcome: string;
}

const COLUMNS =
  "id, at_ms AS atMs, actor_kind AS actorKind, actor_id AS actorId, actor_name AS actorName, action, resource, " +
  "before_json AS before, after_json AS after, request_id AS requestId, outcome";

/** Creates the store on `db`, an open, migrated connection to the state file. */
export function createSqliteAudit(db: Database.Database): AuditStore {
  const insert = db.prepare<
    [
      number,
      string,
      string | null,
      string | null,
      string,
      string,
      string | null,
      string | null,
      string | null,
      string,
    ]
  >(
    `INSERT INTO audit_log (at_ms, actor_kind, actor_id, actor_name, action, resource, before_json, after_json, request_id, outcome)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const selectOne = db.prepare<[number], AuditRow>(`SELECT ${COLUMNS} FROM audit_log WHERE id = ?`);
  const deleteBatch = db.prepare<[number, number]>(
    "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at_ms < ? ORDER BY id LIMIT ?)",
  );

  return {
    append(entry: NewAuditEntry): AuditEntry {
      const { actorKind, actorId, actorName } = actorColumns(entry.actor);
      const { lastInsertRowid } = guardStorage("appendAuditEntry", () =>
        insert.run(
          entry.atMs,
          actorKind,
          actorId,
          actorName,
          entry.action,
          entry.resource,
          toJson(entry.before),
          toJson(entry.after),
          entry.requestId ?? null,
          entry.outcome,
        ),
      );
      return { id: Number(lastInsertRowid), ...entry };
    },

    list(query: AuditQuery): AuditEntry[] {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (query.fromMs !== undefined) {
        where.push("at_ms >= ?");
        params.push(query.fromMs);
      }
      if (query.toMs !== undefined) {
        where.push("at_ms < ?");
        params.push(query.toMs);
      }
      if (query.beforeId !== undefined) {
        where.push("id < ?");
        params.push(query.beforeId);
      }
      if (query.actor !== undefined) {
        where.push("(actor_kind = ? OR actor_id = ? OR actor_name = ?)");
        params.push(query.actor, query.actor, query.actor);
      }
      if (query.action !== undefined) {
        if (query.action.endsWith(".*")) {
          const family = query.action.slice(0, -1);
          where.push("substr(action, 1, ?) = ?");
          params.push(family.length, family);
        } else {
          where.push("action = ?");
          params.push(query.action);
        }
      }
      if (query.resource !== undefined) {
        // The resource itself, and what lies under it: `buses/orders` is not `buses/orders2`.
        const under = query.resource.endsWith("/") ? query.resource : `${query.resource}/`;
        where.push("(resource = ? OR substr(resource, 1, ?) = ?)");
        params.push(query.resource, under.length, under);
      }
      const sql =
        `SELECT ${COLUMNS} FROM audit_log` +
        (where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`) +
        " ORDER BY id DESC LIMIT ?";
      params.push(query.limit);
      const rows = guardStorage("listAuditEntries", () =>
        db.prepare<(string | number)[], AuditRow>(sql).all(...params),
      );
      return rows.map(toEntry);
    },

    get(id: number): AuditEntry | undefined {
      const row = guardStorage("getAuditEntry", () => selectOne.get(id));
      return row === undefined ? undefined : toEntry(row);
    },

    async pruneOlderThan(cutoffMs: number): Promise<number> {
      let pruned = 0;
      for (;;) {
        const { changes } = guardStorage("pruneAuditLog", () =>
          deleteBatch.run(cutoffMs, PRUNE_BATCH),
        );
        pruned += changes;
        if (changes < PRUNE_BATCH) return pruned;
        await yieldToEventLoop();
      }
    },
  };
}

function actorColumns(actor: AuditActor): {
  actorKind: string;
  actorId: string | null;
  actorName: string | null;
} {
  if (actor.kind === "api-key")
    return { actorKind: actor.kind, actorId: actor.id, actorName: actor.name ?? null };
  return { actorKind: actor.kind, actorId: null, actorName: null };
}

function toJson(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

function toEntry(row: AuditRow): AuditEntry {
  const actor: AuditActor =
    row.actorKind === "api-key"
      ? {
          kind: "api-key",
          id: row.actorId ?? "",
          ...(row.actorName === null ? {} : { name: row.actorName }),
        }
      : ({ kind: row.actorKind } as AuditActor);
  return {
    id: row.id,
    atMs: row.atMs,
    actor,
    action: row.action as AuditEntry["action"],
    resource: row.resource,
    before: row.before === null ? null : (JSON.parse(row.before) as unknown),
    after: row.after === null ? null : (JSON.parse(row.after) as unknown),
    ...(row.requestId === null ? {} : { requestId: row.requestId }),
    outcome: row.outcome as AuditEntry["outcome"],
  };
}
