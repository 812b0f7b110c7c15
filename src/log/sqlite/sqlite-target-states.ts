/**
 * Target states on SQLite (`target_states` of the state file, migration 5).
 *
 * The delivery engine asks for a target's state on every attempt, so each target's row is
 * read once and kept in memory, frozen, a target without a row too (as `null`); every
 * write drops that target's entry after its commit. As with the signing secrets, this is
 * exact while this store is the file's one writer of the table: the API that enables and
 * disables targets and the engine that reads and marks them share the process, through
 * this object; the cluster's shared state (`jetstream/shared-tables.ts`, applying states
 * changed on other nodes) tells the store through {@link SqliteTargetStates.forgetCached}.
 * Writes happen only on transitions, so a target that keeps failing (or keeps
 * succeeding) costs no write per attempt.
 */
import type Database from "better-sqlite3";
import type {
  StoredTargetState,
  TargetAddress,
  TargetDisableCause,
  TargetStateName,
  TargetStateStore,
} from "../target-state-store.js";
import { guardStorage } from "./storage-error.js";

interface StateRow {
  bus: string;
  rule: string;
  targetId: string;
  state: TargetStateName;
  reason: string | null;
  cause: TargetDisableCause | null;
  disabledAtMs: number | null;
  failingSinceMs: number | null;
  updatedAtMs: number;
}

const COLUMNS =
  "bus, rule, target_id AS targetId, state, reason, cause, disabled_at_ms AS disabledAtMs, " +
  "failing_since_ms AS failingSinceMs, updated_at_ms AS updatedAtMs";

type Key = [bus: string, rule: string, targetId: string];

/** The store, plus dropping a target's cached state after its row changed underneath. */
export interface SqliteTargetStates extends TargetStateStore {
  /** Reads the target's state from the file again on next use. */
  forgetCached(address: TargetAddress): void;
}

/** Creates the store on `db`, an open, migrated connection to the state file. */
export function createSqliteTargetStates(db: Database.Database): SqliteTargetStates {
  const select = db.prepare<Key, StateRow>(
    `SELECT ${COLUMNS} FROM target_states WHERE bus = ? AND rule = ? AND target_id = ?`,
  );
  const selectDisabled = db.prepare<[], StateRow>(
    `SELECT ${COLUMNS} FROM target_states WHERE state = 'disabled' ORDER BY disabled_at_ms, bus, rule, target_id`,
  );
  // Disabling keeps the failing run: it is part of the story the status tells.
  const upsertDisabled = db.prepare<[...Key, string, TargetDisableCause, number, number]>(
    `INSERT INTO target_states (bus, rule, target_id, state, reason, cause, disabled_at_ms, updated_at_ms)
     VALUES (?, ?, ?, 'disabled', ?, ?, ?, ?)
     ON CONFLICT (bus, rule, target_id) DO UPDATE SET
       state = 'disabled', reason = excluded.reason, cause = excluded.cause,
       disabled_at_ms = excluded.disabled_at_ms, updated_at_ms = excluded.updated_at_ms`,
  );
  const upsertEnabled = db.prepare<[...Key, number]>(
    `INSERT INTO target_states (bus, rule, target_id, state, updated_at_ms)
     VALUES (?, ?, ?, 'enabled', ?)
     ON CONFLICT (bus, rule, target_id) DO UPDATE SET
       state = 'enabled', reason = NULL, cause = NULL, disabled_at_ms = NULL,
       failing_since_ms = NULL, updated_at_ms = excluded.updated_at_ms`,
  );
  const upsertFailing = db.prepare<[...Key, number, number]>(
    `INSERT INTO target_states (bus, rule, target_id, state, failing_since_ms, updated_at_ms)
     VALUES (?, ?, ?, 'enabled', ?, ?)
     ON CONFLICT (bus, rule, target_id) DO UPDATE SET
       failing_since_ms = excluded.failing_since_ms, updated_at_ms = excluded.updated_at_ms
     WHERE target_states.failing_since_ms IS NULL`,
  );
  const clearFailing = db.prepare<[number, ...Key]>(
    `UPDATE target_states SET failing_since_ms = NULL, updated_at_ms = ?
     WHERE bus = ? AND rule = ? AND target_id = ? AND failing_since_ms IS NOT NULL`,
  );
  const removeOfRule = db.prepare<[string, string]>("DELETE FROM target_states WHERE bus = ? AND rule = ?");
  const removeOfBus = db.prepare<[string]>("DELETE FROM target_states WHERE bus = ?");

  /** Target → its state, `null` when it has no row. */
  const cache = new Map<string, StoredTargetState | null>();
  const keyOf = ({ bus, rule, targetId }: TargetAddress) => `${bus}\u0000${rule}\u0000${targetId}`;

  function get(address: TargetAddress): StoredTargetState | undefined {
    const key = keyOf(address);
    let state = cache.get(key);
    if (state === undefined) {
      const row = guardStorage("getTargetState", () =>
        select.get(address.bus, address.rule, address.targetId),
      );
      state = row === undefined ? null : toState(row);
      cache.set(key, state);
    }
    return state ?? undefined;
  }

  /** Runs a write, then forgets the target's cached state, also after a failure. */
  function write(operation: string, address: TargetAddress, run: () => void): void {
    try {
      guardStorage(operation, run);
    } finally {
      cache.delete(keyOf(address));
    }
  }

  function mustGet(address: TargetAddress): StoredTargetState {
    const state = get(address);
    // Just written in this process, on this connection.
    if (state === undefined) throw new Error("target state missing right after its write");
    return state;
  }

  return {
    get,
    disable(address, why) {
      const current = get(address);
      if (current?.state === "disabled") return current;
      write("disableTarget", address, () =>
        upsertDisabled.run(address.bus, address.rule, address.targetId, why.reason, why.cause, why.atMs, why.atMs),
      );
      return mustGet(address);
    },
    enable(address, atMs) {
      write("enableTarget", address, () =>
        upsertEnabled.run(address.bus, address.rule, address.targetId, atMs),
      );
      return mustGet(address);
    },
    markFailing(address, sinceMs) {
      if (get(address)?.failingSinceMs !== undefined) return;
      write("markTargetFailing", address, () =>
        upsertFailing.run(address.bus, address.rule, address.targetId, sinceMs, sinceMs),
      );
    },
    markSucceeded(address, atMs) {
      if (get(address)?.failingSinceMs === undefined) return;
      write("markTargetSucceeded", address, () =>
        clearFailing.run(atMs, address.bus, address.rule, address.targetId),
      );
    },
    listDisabled: () =>
      guardStorage("listDisabledTargets", () => selectDisabled.all()).map(toState),
    deleteStatesOf(bus, rule) {
      try {
        return guardStorage("deleteTargetStates", () =>
          rule === undefined ? removeOfBus.run(bus).changes : removeOfRule.run(bus, rule).changes,
        );
      } finally {
        // Rare (a rule or bus deleted): dropping the whole cache is simpler than finding its keys.
        cache.clear();
      }
    },
    forgetCached(address) {
      cache.delete(keyOf(address));
    },
  };
}

function toState(row: StateRow): StoredTargetState {
  const state: StoredTargetState = {
    bus: row.bus,
    rule: row.rule,
    targetId: row.targetId,
    state: row.state,
    updatedAtMs: row.updatedAtMs,
  };
  if (row.reason !== null) state.reason = row.reason;
  if (row.cause !== null) state.cause = row.cause;
  if (row.disabledAtMs !== null) state.disabledAtMs = row.disabledAtMs;
  if (row.failingSinceMs !== null) state.failingSinceMs = row.failingSinceMs;
  return Object.freeze(state);
}
