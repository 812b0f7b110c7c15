/**
 * Buses and API-managed rules on SQLite. Small, rarely written tables: every call is one
 * synchronous statement (or one transaction), read straight from the file, no cache to keep
 * in step — the rule registry above keeps the compiled form in memory anyway.
 */
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";
import type { JsonObject } from "../../types.js";
import type { CatalogStore, StoredBus, StoredRule } from "../log-engine.js";
import { guardStorage } from "./storage-error.js";

interface BusRow {
  name: string;
  description: string | null;
  system: number;
  createdAtMs: number;
}

interface RuleRow {
  bus: string;
  name: string;
  definition: string;
  createdAtMs: number;
  updatedAtMs: number;
}

const BUS_COLUMNS = "name, description, system, created_at_ms AS createdAtMs";
const RULE_COLUMNS =
  "bus, name, definition, created_at_ms AS createdAtMs, updated_at_ms AS updatedAtMs";

/** Creates the catalog on `db`, an open, migrated connection to the state file. */
export function createSqliteCatalog(db: Database.Database): CatalogStore {
  const listBuses = db.prepare<[], BusRow>(`SELECT ${BUS_COLUMNS} FROM buses ORDER BY name`);
  const getBus = db.prepare<[string], BusRow>(`SELECT ${BUS_COLUMNS} FROM buses WHERE name = ?`);
  const insertBus = db.prepare<[string, string | null, number, number]>(
    "INSERT INTO buses (name, description, system, created_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
  );
  const deleteBus = db.prepare<[string]>("DELETE FROM buses WHERE name = ?");
  const deleteBusRules = db.prepare<[string]>("DELETE FROM rules WHERE bus = ?");
  const listAllRules = db.prepare<[], RuleRow>(
    `SELECT ${RULE_COLUMNS} FROM rules ORDER BY bus, name`,
  );
  const listBusRules = db.prepare<[string], RuleRow>(
    `SELECT ${RULE_COLUMNS} FROM rules WHERE bus = ? ORDER BY name`,
  );
  const getRule = db.prepare<[string, string], RuleRow>(
    `SELECT ${RULE_COLUMNS} FROM rules WHERE bus = ? AND name = ?`,
  );
  const putRule = db.prepare<[string, string, string, number, number]>(
    `INSERT INTO rules (bus, name, definition, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (bus, name) DO UPDATE SET definition = excluded.definition,
       created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms`,
  );
  const deleteRule = db.prepare<[string, string]>("DELETE FROM rules WHERE bus = ? AND name = ?");

  const removeBus = db.transaction((name: string): boolean => {
    deleteBusRules.run(name);
    return deleteBus.run(name).changes > 0;
  });

  return {
    listBuses: () => guardStorage("listBuses", () => listBuses.all().map(toBus)),
    getBus(name) {
      const row = guardStorage("getBus", () => getBus.get(name));
      return row === undefined ? undefined : toBus(row);
    },
    createBus(bus) {
      const changes = guardStorage(
        "createBus",
        () => insertBus.run(bus.name, bus.description ?? null, bus.system === true ? 1 : 0, bus.createdAtMs).changes,
      );
      if (changes === 0) {
        throw new RelaybusError("BusAlreadyExists", `bus "${bus.name}" already exists`, {
          details: { bus: bus.name },
        });
      }
    },
    deleteBus: (name) => guardStorage("deleteBus", () => removeBus(name)),
    listRules(bus) {
      const rows = guardStorage("listRules", () =>
        bus === undefined ? listAllRules.all() : listBusRules.all(bus),
      );
      return rows.map(toRule);
    },
    getRule(bus, name) {
      const row = guardStorage("getRule", () => getRule.get(bus, name));
      return row === undefined ? undefined : toRule(row);
    },
    putRule(rule) {
      guardStorage("putRule", () =>
        putRule.run(
          rule.bus,
          rule.name,
          JSON.stringify(rule.definition),
          rule.createdAtMs,
          rule.updatedAtMs,
        ),
      );
    },
    deleteRule: (bus, name) =>
      guardStorage("deleteRule", () => deleteRule.run(bus, name).changes > 0),
  };
}

function toBus(row: BusRow): StoredBus {
  return {
    name: row.name,
    ...(row.description === null ? {} : { description: row.description }),
    ...(row.system === 1 ? { system: true } : {}),
    createdAtMs: row.createdAtMs,
  };
}

function toRule(row: RuleRow): StoredRule {
  return {
    bus: row.bus,
    name: row.name,
    definition: JSON.parse(row.definition) as JsonObject,
    createdAtMs: row.createdAtMs,
    updatedAtMs: row.updatedAtMs,
  };
}
