/**
 * Connections created through the API, on SQLite (`connections` of the state file,
 * migration 4).
 *
 * Delivery looks up a target's connection on every attempt, so the table is read once into
 * memory (it is small: connections are configuration) and `put` and `delete` update that
 * copy after their commit. This is exact only while this store is the file's one writer of
 * the table, which holds: the API that changes connections and the engine that reads them
 * run in one process, through this object. Each stored connection is frozen and stays the
 * same object until it is replaced, so callers may cache per object.
 */
import type Database from "better-sqlite3";
import type {
  ConnectionDefinition,
  ConnectionStore,
  StoredConnection,
} from "../connection-store.js";
import { guardStorage } from "./storage-error.js";

interface ConnectionRow {
  name: string;
  definition: string;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Creates the store on `db`, an open, migrated connection to the state file. */
export function createSqliteConnections(db: Database.Database): ConnectionStore {
  const selectAll = db.prepare<[], ConnectionRow>(
    "SELECT name, definition, created_at_ms AS createdAtMs, updated_at_ms AS updatedAtMs FROM connections ORDER BY name",
  );
  const upsert = db.prepare<[string, string, number, number]>(
    `INSERT INTO connections (name, definition, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,
       created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms`,
  );
  const remove = db.prepare<[string]>("DELETE FROM connections WHERE name = ?");

  /** Name → connection; read on first use. Replaced, never mutated, so lists stay consistent. */
  let cache: Map<string, StoredConnection> | undefined;

  function all(): Map<string, StoredConnection> {
    if (cache === undefined) {
      const rows = guardStorage("listConnections", () => selectAll.all());
      cache = new Map(rows.map((row) => [row.name, toConnection(row)]));
    }
    return cache;
  }

  return {
    list: () => [...all().values()],
    get: (name) => all().get(name),
    put(connection) {
      const frozen = freezeConnection(connection);
      try {
        guardStorage("putConnection", () =>
          upsert.run(
            frozen.name,
            JSON.stringify(frozen.definition),
            frozen.createdAtMs,
            frozen.updatedAtMs,
          ),
        );
      } catch (error) {
        // Whatever the file holds now is read again.
        cache = undefined;
        throw error;
      }
      if (cache !== undefined) cache = new Map(cache).set(frozen.name, frozen);
    },
    delete(name) {
      let deleted: boolean;
      try {
        deleted = guardStorage("deleteConnection", () => remove.run(name).changes > 0);
      } catch (error) {
        cache = undefined;
        throw error;
      }
      if (cache?.has(name) === true) {
        const next = new Map(cache);
        next.delete(name);
        cache = next;
      }
      return deleted;
    },
  };
}

function toConnection(row: ConnectionRow): StoredConnection {
  return freezeConnection({
    name: row.name,
    definition: JSON.parse(row.definition) as ConnectionDefinition,
    createdAtMs: row.createdAtMs,
    updatedAtMs: row.updatedAtMs,
  });
}

/** A deep-frozen copy: the definition is shared by every reader until it is replaced. */
function freezeConnection(connection: StoredConnection): StoredConnection {
  const definition = deepFreeze(structuredClone(connection.definition));
  return Object.freeze({ ...connection, definition });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
