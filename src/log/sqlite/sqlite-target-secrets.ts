/**
 * Signing secrets of targets on SQLite (`target_secrets` of the state file, migration 2).
 *
 * The delivery engine asks for a target's active secrets on every attempt, so each target's
 * rows are read once and kept in memory, frozen; `addSecret` and `revokeSecret` drop that
 * target's entry after their commit. This is exact only while this store is the file's one
 * writer of the table, which holds: the API that changes secrets and the engine that reads
 * them run in one process, through this object. The one other writer, the cluster's shared
 * state (`jetstream/shared-tables.ts`, applying secrets changed on other nodes), tells the
 * store through {@link SqliteTargetSecrets.forgetCached}. A target with no secrets is cached
 * too (as an empty list), so unsigned deliveries cost no query either.
 */
import type Database from "better-sqlite3";
import type { StoredTargetSecret, TargetSecretKind, TargetSecretStore } from "../log-engine.js";
import { guardStorage } from "./storage-error.js";

interface SecretRow {
  bus: string;
  rule: string;
  targetId: string;
  id: string;
  kind: TargetSecretKind;
  material: string;
  publicKey: string | null;
  createdAtMs: number;
  expiresAtMs: number | null;
}

const COLUMNS =
  "bus, rule, target_id AS targetId, id, kind, material, public_key AS publicKey, " +
  "created_at_ms AS createdAtMs, expires_at_ms AS expiresAtMs";

const NONE: readonly StoredTargetSecret[] = Object.freeze([]);

/** The store, plus dropping a target's cached secrets after its rows changed underneath. */
export interface SqliteTargetSecrets extends TargetSecretStore {
  /** Reads the target's secrets from the file again on next use. */
  forgetCached(bus: string, rule: string, targetId: string): void;
}

/** Creates the store on `db`, an open, migrated connection to the state file. */
export function createSqliteTargetSecrets(db: Database.Database): SqliteTargetSecrets {
  const select = db.prepare<[string, string, string], SecretRow>(
    `SELECT ${COLUMNS} FROM target_secrets WHERE bus = ? AND rule = ? AND target_id = ?
     ORDER BY created_at_ms, rowid`,
  );
  const insert = db.prepare<
    [string, string, string, string, string, string, string | null, number, number | null]
  >(
    `INSERT INTO target_secrets
       (bus, rule, target_id, id, kind, material, public_key, created_at_ms, expires_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  // Others that would outlive the new end are cut to it; those ending sooner keep their end.
  const expireOthers = db.prepare<[number, string, string, string, string, number]>(
    `UPDATE target_secrets SET expires_at_ms = ?
     WHERE bus = ? AND rule = ? AND target_id = ? AND id <> ?
       AND (expires_at_ms IS NULL OR expires_at_ms > ?)`,
  );
  const deleteExpired = db.prepare<[string, string, string, number]>(
    `DELETE FROM target_secrets
     WHERE bus = ? AND rule = ? AND target_id = ? AND expires_at_ms IS NOT NULL AND expires_at_ms <= ?`,
  );
  const remove = db.prepare<[string, string, string, string]>(
    "DELETE FROM target_secrets WHERE bus = ? AND rule = ? AND target_id = ? AND id = ?",
  );
  const removeOfRule = db.prepare<[string, string]>("DELETE FROM target_secrets WHERE bus = ? AND rule = ?");
  const removeOfBus = db.prepare<[string]>("DELETE FROM target_secrets WHERE bus = ?");

  const add = db.transaction((secret: StoredTargetSecret, expireOthersAtMs: number | undefined) => {
    const { bus, rule, targetId } = secret;
    deleteExpired.run(bus, rule, targetId, secret.createdAtMs);
    insert.run(
      bus,
      rule,
      targetId,
      secret.id,
      secret.kind,
      secret.material,
      secret.publicKey ?? null,
      secret.createdAtMs,
      secret.expiresAtMs ?? null,
    );
    if (expireOthersAtMs !== undefined) {
      expireOthers.run(expireOthersAtMs, bus, rule, targetId, secret.id, expireOthersAtMs);
    }
  });

  /** Target → its secrets, oldest first, expired ones included (filtered on read). */
  const cache = new Map<string, readonly StoredTargetSecret[]>();
  const keyOf = (bus: string, rule: string, targetId: string) =>
    `${bus}\u0000${rule}\u0000${targetId}`;

  function read(bus: string, rule: string, targetId: string): readonly StoredTargetSecret[] {
    const rows = guardStorage("listTargetSecrets", () => select.all(bus, rule, targetId));
    return rows.length === 0
      ? NONE
      : Object.freeze(rows.map((row) => Object.freeze(toSecret(row))));
  }

  function cached(bus: string, rule: string, targetId: string): readonly StoredTargetSecret[] {
    const key = keyOf(bus, rule, targetId);
    let secrets = cache.get(key);
    if (secrets === undefined) {
      secrets = read(bus, rule, targetId);
      cache.set(key, secrets);
    }
    return secrets;
  }

  return {
    activeSecrets(bus, rule, targetId, nowMs) {
      const secrets = cached(bus, rule, targetId);
      // The common case allocates nothing: no secret of the target has expired.
      for (const secret of secrets) {
        if (secret.expiresAtMs !== undefined && secret.expiresAtMs <= nowMs) {
          return secrets.filter((s) => s.expiresAtMs === undefined || s.expiresAtMs > nowMs);
        }
      }
      return secrets;
    },
    listSecrets: (bus, rule, targetId) => [...cached(bus, rule, targetId)],
    addSecret(secret, options = {}) {
      try {
        guardStorage("addTargetSecret", () => add.immediate(secret, options.expireOthersAtMs));
      } finally {
        // Also after a failure: whatever the file holds now is read again.
        cache.delete(keyOf(secret.bus, secret.rule, secret.targetId));
      }
    },
    revokeSecret(bus, rule, targetId, id) {
      try {
        return guardStorage(
          "revokeTargetSecret",
          () => remove.run(bus, rule, targetId, id).changes > 0,
        );
      } finally {
        cache.delete(keyOf(bus, rule, targetId));
      }
    },
    deleteSecretsOf(bus, rule) {
      try {
        return guardStorage("deleteTargetSecrets", () =>
          rule === undefined ? removeOfBus.run(bus).changes : removeOfRule.run(bus, rule).changes,
        );
      } finally {
        // Rare (a rule or bus deleted): dropping the whole cache is simpler than finding its keys.
        cache.clear();
      }
    },
    forgetCached(bus, rule, targetId) {
      cache.delete(keyOf(bus, rule, targetId));
    },
  };
}

function toSecret(row: SecretRow): StoredTargetSecret {
  const secret: StoredTargetSecret = {
    bus: row.bus,
    rule: row.rule,
    targetId: row.targetId,
    id: row.id,
    kind: row.kind,
    material: row.material,
    createdAtMs: row.createdAtMs,
  };
  if (row.publicKey !== null) secret.publicKey = row.publicKey;
  if (row.expiresAtMs !== null) secret.expiresAtMs = row.expiresAtMs;
  return secret;
}
