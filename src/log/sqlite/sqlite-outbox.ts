/**
 * Changes to shared state made on this node, kept in the state file until the cluster has
 * them (the transactional outbox): a change is recorded in the same transaction as the
 * local write it mirrors, so a crash never keeps one without the other, and a sender
 * delivers the changes in order, deleting each once the cluster acknowledged it.
 */
import type Database from "better-sqlite3";
import type { Clock, JsonValue } from "../../types.js";
import { guardStorage } from "./storage-error.js";

/** One change: the entity's new value under its key, or `null` for its deletion. */
export interface OutboxChange {
  seq: number;
  key: string;
  value: JsonValue | null;
}

export interface SqliteOutbox {
  /** Records a change; call it inside the transaction of the local write. */
  add(key: string, value: JsonValue | null): void;
  /** The oldest changes not yet delivered, at most `limit`. */
  oldest(limit: number): OutboxChange[];
  /** Forgets a delivered change. */
  remove(seq: number): void;
  /** Changes waiting. */
  size(): number;
  /** Whether a change of `key` is waiting. */
  holds(key: string): boolean;
}

export function createSqliteOutbox(db: Database.Database, clock: Clock): SqliteOutbox {
  const insert = db.prepare<[string, string | null, number]>(
    "INSERT INTO shared_state_outbox (key, value, created_at_ms) VALUES (?, ?, ?)",
  );
  const selectOldest = db.prepare<[number], { seq: number; key: string; value: string | null }>(
    "SELECT seq, key, value FROM shared_state_outbox ORDER BY seq LIMIT ?",
  );
  const deleteOne = db.prepare<[number]>("DELETE FROM shared_state_outbox WHERE seq = ?");
  const count = db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM shared_state_outbox");
  // The outbox is short (changes wait only while the cluster is out of reach): a scan is cheap.
  const holdsKey = db.prepare<[string], number>("SELECT 1 FROM shared_state_outbox WHERE key = ? LIMIT 1").pluck();
  return {
    add(key, value) {
      guardStorage("outbox add", () => insert.run(key, value === null ? null : JSON.stringify(value), clock.nowMs()));
    },
    oldest(limit) {
      return guardStorage("outbox read", () => selectOldest.all(limit)).map((row) => ({
        seq: row.seq,
        key: row.key,
        value: row.value === null ? null : (JSON.parse(row.value) as JsonValue),
      }));
    },
    remove(seq) {
      guardStorage("outbox remove", () => deleteOne.run(seq));
    },
    size: () => guardStorage("outbox size", () => count.get())?.n ?? 0,
    holds: (key) => guardStorage("outbox holds", () => holdsKey.get(key)) !== undefined,
  };
}
