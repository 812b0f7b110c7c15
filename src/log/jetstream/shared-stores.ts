/**
 * The stores whose content every node of a cluster shares, over this node's own tables: a
 * write goes to the table and to the outbox in one transaction (see `shared-state.ts`), and a
 * change from the cluster is applied to the table alone.
 *
 * Keys in the bucket: `bus.<bus>`, `rule.<bus>.<rule>`, `connection.<name>`, each name escaped
 * as in subjects (`busToken`: `.` and `_` escaped) so that a key splits unambiguously.
 */
import type Database from "better-sqlite3";
import type { JsonValue } from "../../types.js";
import type { ConnectionStore, StoredConnection } from "../connection-store.js";
import type { CatalogStore, StoredBus, StoredRule } from "../log-engine.js";
import type { SqliteOutbox } from "../sqlite/sqlite-outbox.js";
import { busFromToken, busToken } from "./jetstream-names.js";
import type { SharedKind } from "./shared-state.js";

const busKey = (bus: string) => `bus.${busToken(bus)}`;
const ruleKey = (bus: string, rule: string) => `rule.${busToken(bus)}.${busToken(rule)}`;
const connectionKey = (name: string) => `connection.${busToken(name)}`;

/** The names a key holds after its kind's prefix: `rule.a.b` → `["a", "b"]`. */
function namesOf(key: string): string[] {
  return key.split(".").slice(1).map(busFromToken);
}

interface Sharing {
  db: Database.Database;
  outbox: SqliteOutbox;
  /** Wakes the sender once a change is in the outbox. */
  changed(): void;
}

/** The catalog, shared: buses and API rules. */
export function shareCatalog(inner: CatalogStore, sharing: Sharing): { store: CatalogStore; kinds: SharedKind[] } {
  const { db, outbox, changed } = sharing;
  const store: CatalogStore = {
    ...inner,
    createBus(bus) {
      db.transaction(() => {
        inner.createBus(bus);
        outbox.add(busKey(bus.name), bus as unknown as JsonValue);
      })();
      changed();
    },
    deleteBus(name) {
      const rules = inner.listRules(name);
      const deleted = db.transaction(() => {
        if (!inner.deleteBus(name)) return false;
        outbox.add(busKey(name), null);
        for (const rule of rules) outbox.add(ruleKey(name, rule.name), null);
        return true;
      })();
      if (deleted) changed();
      return deleted;
    },
    putRule(rule) {
      db.transaction(() => {
        inner.putRule(rule);
        outbox.add(ruleKey(rule.bus, rule.name), rule as unknown as JsonValue);
      })();
      changed();
    },
    deleteRule(bus, name) {
      const deleted = db.transaction(() => {
        if (!inner.deleteRule(bus, name)) return false;
        outbox.add(ruleKey(bus, name), null);
        return true;
      })();
      if (deleted) changed();
      return deleted;
    },
  };
  const buses: SharedKind = {
    prefix: "bus",
    apply(key, value) {
      const [name] = namesOf(key);
      if (name === undefined) return;
      if (value === null) inner.deleteBus(name);
      else if (inner.getBus(name) === undefined) inner.createBus(value as unknown as StoredBus);
    },
    localEntries: () => inner.listBuses().map((bus) => ({ key: busKey(bus.name), value: bus as unknown as JsonValue })),
  };
  const rules: SharedKind = {
    prefix: "rule",
    apply(key, value) {
      const [bus, name] = namesOf(key);
      if (bus === undefined || name === undefined) return;
      if (value === null) inner.deleteRule(bus, name);
      else inner.putRule(value as unknown as StoredRule);
    },
    localEntries: () =>
      inner.listRules().map((rule) => ({ key: ruleKey(rule.bus, rule.name), value: rule as unknown as JsonValue })),
  };
  return { store, kinds: [buses, rules] };
}

/** Connections created through the API, shared. */
export function shareConnections(
  inner: ConnectionStore,
  sharing: Sharing,
): { store: ConnectionStore; kinds: SharedKind[] } {
  const { db, outbox, changed } = sharing;
  const store: ConnectionStore = {
    ...inner,
    put(connection) {
      db.transaction(() => {
        inner.put(connection);
        outbox.add(connectionKey(connection.name), connection as unknown as JsonValue);
      })();
      changed();
    },
    delete(name) {
      const deleted = db.transaction(() => {
        if (!inner.delete(name)) return false;
        outbox.add(connectionKey(name), null);
        return true;
      })();
      if (deleted) changed();
      return deleted;
    },
  };
  const connections: SharedKind = {
    prefix: "connection",
    apply(key, value) {
      const [name] = namesOf(key);
      if (name === undefined) return;
      if (value === null) inner.delete(name);
      else inner.put(value as unknown as StoredConnection);
    },
    localEntries: () =>
      inner.list().map((connection) => ({ key: connectionKey(connection.name), value: connection as unknown as JsonValue })),
  };
  return { store, kinds: [connections] };
}
