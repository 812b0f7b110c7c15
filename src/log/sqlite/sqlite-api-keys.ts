/**
 * API keys on SQLite (`api_keys` of the state file, migration 10; `rate_per_second`, 12).
 *
 * Every authenticated request looks its key up, so the table is read once into memory (it is
 * small: keys are configuration) and every write updates that copy after its commit. This is
 * exact only while this store is the file's one writer of the table, which holds: the API that
 * creates and revokes keys and the checks that read them run in one process, through this
 * object. That is also what makes a revoke take effect on the very next request.
 */
import type Database from "better-sqlite3";
import type { ApiKeyStore, StoredApiKey } from "../api-key-store.js";
import { guardStorage } from "./storage-error.js";

interface ApiKeyRow {
  id: string;
  name: string;
  scopes: string;
  secretHash: string;
  awsSecretSealed: string;
  createdAtMs: number;
  expiresAtMs: number | null;
  revokedAtMs: number | null;
  lastUsedAtMs: number | null;
  ratePerSecond: number | null;
}

const COLUMNS =
  "id, name, scopes, secret_hash AS secretHash, aws_secret_sealed AS awsSecretSealed, " +
  "created_at_ms AS createdAtMs, expires_at_ms AS expiresAtMs, revoked_at_ms AS revokedAtMs, " +
  "last_used_at_ms AS lastUsedAtMs, rate_per_second AS ratePerSecond";

/** Creates the store on `db`, an open, migrated connection to the state file. */
/** The API key store on SQLite, plus what a cluster needs of it. */
export interface SqliteApiKeys extends ApiKeyStore {
  /** Drops the keys read into memory: another node changed the table (shared-tables.ts). */
  forgetCached(): void;
}

export function createSqliteApiKeys(db: Database.Database): SqliteApiKeys {
  const selectAll = db.prepare<[], ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at_ms, id`);
  const insert = db.prepare<[string, string, string, string, string, number, number | null, number | null]>(
    `INSERT INTO api_keys (id, name, scopes, secret_hash, aws_secret_sealed, created_at_ms, expires_at_ms, rate_per_second)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const revoke = db.prepare<[number, string]>(
    "UPDATE api_keys SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL",
  );
  const touch = db.prepare<[number, string]>("UPDATE api_keys SET last_used_at_ms = ? WHERE id = ?");

  /** Id → key; read on first use. Replaced, never mutated, so a list stays consistent. */
  let cache: Map<string, StoredApiKey> | undefined;

  function all(): Map<string, StoredApiKey> {
    if (cache === undefined) {
      const rows = guardStorage("listApiKeys", () => selectAll.all());
      cache = new Map(rows.map((row) => [row.id, toKey(row)]));
    }
    return cache;
  }

  /** Runs a write; on failure the copy is dropped, so whatever the file holds is read again. */
  function write(operation: string, run: () => void): void {
    try {
      guardStorage(operation, run);
    } catch (error) {
      cache = undefined;
      throw error;
    }
  }

  function replace(key: StoredApiKey): void {
    cache = new Map(all()).set(key.id, Object.freeze({ ...key, scopes: Object.freeze([...key.scopes]) }));
  }

  return {
    list: () => [...all().values()],
    get: (id) => all().get(id),
    count: () => all().size,
    insert(key) {
      all();
      write("insertApiKey", () =>
        insert.run(
          key.id,
          key.name,
          JSON.stringify(key.scopes),
          key.secretHash,
          key.awsSecretSealed,
          key.createdAtMs,
          key.expiresAtMs ?? null,
          key.ratePerSecond ?? null,
        ),
      );
      const { revokedAtMs: _revoked, lastUsedAtMs: _used, ...fresh } = key;
      replace(fresh);
    },
    revoke(id, atMs) {
      const current = all().get(id);
      if (current === undefined) return undefined;
      if (current.revokedAtMs !== undefined) return current;
      write("revokeApiKey", () => revoke.run(atMs, id));
      replace({ ...current, revokedAtMs: atMs });
      return all().get(id);
    },
    forgetCached() {
      cache = undefined;
    },
    touch(id, atMs) {
      const current = all().get(id);
      if (current === undefined) return;
      write("touchApiKey", () => touch.run(atMs, id));
      replace({ ...current, lastUsedAtMs: atMs });
    },
  };
}

function toKey(row: ApiKeyRow): StoredApiKey {
  return Object.freeze({
    id: row.id,
    name: row.name,
    scopes: Object.freeze(JSON.parse(row.scopes) as string[]),
    secretHash: row.secretHash,
    awsSecretSealed: row.awsSecretSealed,
    createdAtMs: row.createdAtMs,
    ...(row.expiresAtMs === null ? {} : { expiresAtMs: row.expiresAtMs }),
    ...(row.revokedAtMs === null ? {} : { revokedAtMs: row.revokedAtMs }),
    ...(row.lastUsedAtMs === null ? {} : { lastUsedAtMs: row.lastUsedAtMs }),
    ...(row.ratePerSecond === null ? {} : { ratePerSecond: row.ratePerSecond }),
  });
}
