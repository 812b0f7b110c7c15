/**
 * Replays on SQLite, in the state file (migration 6). A batch's deliveries go in through
 * `DeliveryStore.enqueue`, which the runner calls inside this store's transaction on the
 * same connection (better-sqlite3 nests it as a savepoint), so a replay's progress never
 * passes events whose deliveries are not durably pending: after a crash it resumes from its
 * last offset and the repeated delivery ids are skipped.
 *
 * Each delivery a batch enqueues counts on the `replay` meter in that same transaction:
 * the rows `within` inserted are the ones past the table's last rowid before it ran (a
 * repeated id inserts nothing, so it is not counted twice). Their attempts count on `push`.
 */
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";
import { systemClock, type Clock } from "../../types.js";
import {
  replayOrderKeyPrefix,
  type ReplayBatch,
  type ReplayDestination,
  type ReplaySource,
  type ReplayState,
  type ReplayStore,
  type StoredReplay,
} from "../replay-store.js";
import { unitsOfBytes } from "../usage-store.js";
import { guardStorage, toStorageError } from "./storage-error.js";
import { createUsageWriter, UsageTally } from "./sqlite-usage.js";

interface ReplayRow {
  name: string;
  description: string | null;
  sourceArchive: string | null;
  archiveId: number | null;
  bus: string;
  fromMs: number;
  toMs: number;
  endOffset: number;
  destinationBus: string;
  destinationRule: string | null;
  destinationTarget: string | null;
  state: ReplayState;
  total: number;
  replayed: number;
  deliveries: number;
  lastOffset: number;
  startedAtMs: number;
  endedAtMs: number | null;
  error: string | null;
}

const REPLAY_COLUMNS =
  "name, description, source_archive AS sourceArchive, archive_id AS archiveId, bus, from_ms AS fromMs, " +
  "to_ms AS toMs, end_offset AS endOffset, destination_bus AS destinationBus, destination_rule AS destinationRule, " +
  "destination_target AS destinationTarget, state, total, replayed, deliveries, last_offset AS lastOffset, " +
  "started_at_ms AS startedAtMs, ended_at_ms AS endedAtMs, error";

/**
 * Creates the replay store on `db`, an open, migrated connection to the state file: the
 * connection the delivery store writes through, so that its writes can join a batch.
 */
export function createSqliteReplays(
  db: Database.Database,
  options: { meterUsage?: boolean; clock?: Clock } = {},
): ReplayStore {
  const meterUsage = options.meterUsage ?? true;
  const writeUsage = createUsageWriter(db, options.clock ?? systemClock);
  const selectLastDeliveryRowid = db
    .prepare<[], number | null>("SELECT MAX(rowid) FROM deliveries")
    .pluck();
  const selectEnqueuedSince = db.prepare<
    [number],
    { createdAtMs: number; bus: string; rule: string; targetId: string; bodyBytes: number | null }
  >(
    `SELECT created_at_ms AS createdAtMs, bus, rule, target_id AS targetId,
       octet_length(json_extract(request, '$.body')) AS bodyBytes
     FROM deliveries WHERE rowid > ?`,
  );
  const insert = db.prepare(
    `INSERT INTO replays (name, description, source_archive, archive_id, bus, from_ms, to_ms, end_offset,
       destination_bus, destination_rule, destination_target, state, total, replayed, deliveries, last_offset,
       started_at_ms, ended_at_ms, error)
     VALUES (@name, @description, @sourceArchive, @archiveId, @bus, @fromMs, @toMs, @endOffset, @destinationBus,
       @destinationRule, @destinationTarget, @state, @total, @replayed, @deliveries, @lastOffset, @startedAtMs,
       @endedAtMs, @error)
     ON CONFLICT (name) DO NOTHING`,
  );
  const selectOne = db.prepare<[string], ReplayRow>(
    `SELECT ${REPLAY_COLUMNS} FROM replays WHERE name = ?`,
  );
  const selectNewest = db.prepare<[number], ReplayRow>(
    `SELECT ${REPLAY_COLUMNS} FROM replays ORDER BY started_at_ms DESC, name LIMIT ?`,
  );
  const selectRunning = db.prepare<[], ReplayRow>(
    `SELECT ${REPLAY_COLUMNS} FROM replays WHERE state = 'running' ORDER BY started_at_ms, name`,
  );
  const progress = db.prepare<[number, number, number, string]>(
    `UPDATE replays SET last_offset = ?, replayed = replayed + ?, deliveries = deliveries + ?
     WHERE name = ? AND state = 'running'`,
  );
  const complete = db.prepare<[number, string]>(
    // Once done, the total is what was replayed: events pruned by retention meanwhile, or
    // archived late, no longer skew it.
    "UPDATE replays SET state = 'completed', ended_at_ms = ?, total = replayed WHERE name = ? AND state = 'running'",
  );
  const updateTotal = db.prepare<[number, string]>(
    "UPDATE replays SET total = ? WHERE name = ? AND state = 'running'",
  );
  const end = db.prepare<[ReplayState, number, string | null, string]>(
    "UPDATE replays SET state = ?, ended_at_ms = ?, error = ? WHERE name = ? AND state = 'running'",
  );
  // A range over the order keys of the replay (`replay:<name>:` up to the next character
  // after ':'), so the partial index on pending order keys answers it.
  const countPending = db
    .prepare<[string, string], number>(
      `SELECT COUNT(*) FROM deliveries
       WHERE order_key IS NOT NULL AND order_key >= ? AND order_key < ?`,
    )
    .pluck();
  const lowestPosition = db
    .prepare<[string], number | null>(
      "SELECT MIN(last_offset) FROM replays WHERE bus = ? AND state = 'running' AND source_archive IS NULL",
    )
    .pluck();

  const commit = db.transaction((name: string, batch: ReplayBatch, within: () => void): boolean => {
    const moved = progress.run(
      batch.throughOffset,
      batch.replayedEvents,
      batch.deliveries,
      name,
    ).changes;
    if (moved === 0) return false;
    const lastRowid = meterUsage ? (selectLastDeliveryRowid.get() ?? 0) : 0;
    within();
    if (meterUsage) {
      const replayed = new UsageTally();
      for (const d of selectEnqueuedSince.iterate(lastRowid)) {
        replayed.add(d.createdAtMs, "replay", { bus: d.bus, rule: d.rule, target: d.targetId }, 1, unitsOfBytes(d.bodyBytes ?? 0));
      }
      writeUsage(replayed);
    }
    if (batch.completedAtMs !== undefined) complete.run(batch.completedAtMs, name);
    return true;
  });

  return {
    create(replay) {
      const changes = guardStorage("createReplay", () => insert.run(toRow(replay)).changes);
      if (changes === 0) {
        throw new RelaybusError(
          "ReplayAlreadyExists",
          `replay "${replay.name}" already exists; replay names are never reused`,
          {
            details: { replay: replay.name },
          },
        );
      }
    },
    get(name) {
      const row = guardStorage("getReplay", () => selectOne.get(name));
      return row === undefined ? undefined : toReplay(row);
    },
    list: (limit) => guardStorage("listReplays", () => selectNewest.all(limit).map(toReplay)),
    listRunning: () => guardStorage("listReplays", () => selectRunning.all().map(toReplay)),
    commitBatch(name, batch, within) {
      try {
        return commit.immediate(name, batch, within);
      } catch (error) {
        throw toStorageError(error, "commitReplayBatch");
      }
    },
    setTotal(name, total) {
      guardStorage("setReplayTotal", () => updateTotal.run(total, name));
    },
    cancel(name, nowMs) {
      guardStorage("cancelReplay", () => end.run("cancelled", nowMs, null, name));
      const row = guardStorage("getReplay", () => selectOne.get(name));
      return row === undefined ? undefined : toReplay(row);
    },
    fail(name, error, nowMs) {
      guardStorage("failReplay", () => end.run("failed", nowMs, error, name));
    },
    pendingDeliveries(name) {
      const prefix = replayOrderKeyPrefix(name);
      // ':' + 1 is ';': every key that starts with the prefix sorts below prefix-with-';'.
      const upper = `${prefix.slice(0, -1)};`;
      return guardStorage("countReplayDeliveries", () => countPending.get(prefix, upper) ?? 0);
    },
    lowestPosition(bus) {
      const lowest = guardStorage("replayPositions", () => lowestPosition.get(bus));
      return lowest === null || lowest === undefined ? undefined : lowest;
    },
  };
}

function toRow(r: StoredReplay): Record<string, string | number | null> {
  return {
    name: r.name,
    description: r.description ?? null,
    sourceArchive: "archive" in r.source ? r.source.archive : null,
    archiveId: r.archiveId ?? null,
    bus: r.bus,
    fromMs: r.fromMs,
    toMs: r.toMs,
    endOffset: r.endOffset,
    destinationBus: r.destination.bus,
    destinationRule: r.destination.rule ?? null,
    destinationTarget: r.destination.targetId ?? null,
    state: r.state,
    total: r.total,
    replayed: r.replayed,
    deliveries: r.deliveries,
    lastOffset: r.lastOffset,
    startedAtMs: r.startedAtMs,
    endedAtMs: r.endedAtMs ?? null,
    error: r.error ?? null,
  };
}

function toReplay(row: ReplayRow): StoredReplay {
  const source: ReplaySource =
    row.sourceArchive === null ? { bus: row.bus } : { archive: row.sourceArchive };
  const destination: ReplayDestination = { bus: row.destinationBus };
  if (row.destinationRule !== null) destination.rule = row.destinationRule;
  if (row.destinationTarget !== null) destination.targetId = row.destinationTarget;
  return {
    name: row.name,
    ...(row.description === null ? {} : { description: row.description }),
    source,
    ...(row.archiveId === null ? {} : { archiveId: row.archiveId }),
    bus: row.bus,
    fromMs: row.fromMs,
    toMs: row.toMs,
    endOffset: row.endOffset,
    destination,
    state: row.state,
    total: row.total,
    replayed: row.replayed,
    deliveries: row.deliveries,
    lastOffset: row.lastOffset,
    startedAtMs: row.startedAtMs,
    ...(row.endedAtMs === null ? {} : { endedAtMs: row.endedAtMs }),
    ...(row.error === null ? {} : { error: row.error }),
  };
}
