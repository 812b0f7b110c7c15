/**
 * Streams' state on SQLite (migration 13): API definitions, runtimes, capacity history and
 * dead letters, in the state file. A confirmed batch's position, counters, usage and dead
 * letters commit in one transaction (see stream-store.ts for why).
 */
import type Database from "better-sqlite3";
import type { Clock, JsonObject } from "../../types.js";
import type {
  CuChange,
  StoredStreamDefinition,
  StreamDeadLetter,
  StreamDeadLetterStage,
  StreamDesiredState,
  StreamProgress,
  StreamRuntime,
  StreamState,
  StreamStore,
} from "../stream-store.js";
import { DAY_MS } from "../usage-store.js";
import { guardStorage } from "./storage-error.js";
import { createUsageWriter, UsageTally } from "./sqlite-usage.js";

interface RuntimeRow {
  name: string;
  desired: StreamDesiredState;
  state: StreamState;
  reason: string | null;
  position: string | null;
  currentCU: number;
  eventsIn: number;
  eventsOut: number;
  eventsFiltered: number;
  eventsDeadLettered: number;
  bytesOut: number;
  retries: number;
  throttledMs: number;
  lastEventAtMs: number | null;
  updatedAtMs: number;
}

interface DeadLetterRow {
  id: number;
  stream: string;
  eventId: string;
  json: string;
  reason: string;
  attempts: number;
  stage: StreamDeadLetterStage;
  failedAtMs: number;
}

function toDeadLetter(row: DeadLetterRow): StreamDeadLetter {
  return {
    id: row.id,
    stream: row.stream,
    eventId: row.eventId,
    event: JSON.parse(row.json) as JsonObject,
    reason: row.reason,
    attempts: row.attempts,
    stage: row.stage,
    failedAtMs: row.failedAtMs,
  };
}

const RUNTIME_COLUMNS =
  "name, desired, state, reason, position, current_cu AS currentCU, events_in AS eventsIn, " +
  "events_out AS eventsOut, events_filtered AS eventsFiltered, events_dead_lettered AS eventsDeadLettered, " +
  "bytes_out AS bytesOut, retries, throttled_ms AS throttledMs, last_event_at_ms AS lastEventAtMs, " +
  "updated_at_ms AS updatedAtMs";

/** CU x ms in one CU-milli-hour: 3,600,000 ms / 1,000. */
const CU_MS_PER_MILLI_HOUR = 3_600;

function toRuntime(row: RuntimeRow): StreamRuntime {
  return {
    name: row.name,
    desired: row.desired,
    state: row.state,
    ...(row.reason === null ? {} : { reason: row.reason }),
    ...(row.position === null ? {} : { position: row.position }),
    currentCU: row.currentCU,
    eventsIn: row.eventsIn,
    eventsOut: row.eventsOut,
    eventsFiltered: row.eventsFiltered,
    eventsDeadLettered: row.eventsDeadLettered,
    bytesOut: row.bytesOut,
    retries: row.retries,
    throttledMs: row.throttledMs,
    ...(row.lastEventAtMs === null ? {} : { lastEventAtMs: row.lastEventAtMs }),
    updatedAtMs: row.updatedAtMs,
  };
}

/** Creates the store on `db`, an open, migrated connection to the state file. */
export function createSqliteStreams(
  db: Database.Database,
  options: { clock: Clock; /** Count `stream-events` and `stream-cu-hours` into usage. */ meterUsage: boolean },
): StreamStore {
  const { clock, meterUsage } = options;
  const writeUsage = createUsageWriter(db, clock);
  const selectDefinitions = db.prepare<[], { name: string; json: string; createdAtMs: number; updatedAtMs: number }>(
    `SELECT name, definition_json AS json, created_at_ms AS createdAtMs, updated_at_ms AS updatedAtMs
     FROM stream_definitions ORDER BY name`,
  );
  const selectDefinition = db.prepare<[string], { name: string; json: string; createdAtMs: number; updatedAtMs: number }>(
    `SELECT name, definition_json AS json, created_at_ms AS createdAtMs, updated_at_ms AS updatedAtMs
     FROM stream_definitions WHERE name = ?`,
  );
  const upsertDefinition = db.prepare<[string, string, number, number]>(
    `INSERT INTO stream_definitions (name, definition_json, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET definition_json = excluded.definition_json, updated_at_ms = excluded.updated_at_ms`,
  );
  const deleteDefinition = db.prepare<[string]>("DELETE FROM stream_definitions WHERE name = ?");
  const deleteRuntime = db.prepare<[string]>("DELETE FROM stream_runtimes WHERE name = ?");
  const deleteDeadLetters = db.prepare<[string]>("DELETE FROM stream_dead_letters WHERE stream = ?");
  const selectRuntime = db.prepare<[string], RuntimeRow>(`SELECT ${RUNTIME_COLUMNS} FROM stream_runtimes WHERE name = ?`);
  const selectRuntimes = db.prepare<[], RuntimeRow>(`SELECT ${RUNTIME_COLUMNS} FROM stream_runtimes ORDER BY name`);
  const insertRuntime = db.prepare<[string, StreamDesiredState, StreamState, number, number, number]>(
    `INSERT INTO stream_runtimes (name, desired, state, current_cu, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO NOTHING`,
  );
  const selectIdleCandidates = db.prepare<[], { name: string; since: number; through: number }>(
    `SELECT name, COALESCE(last_event_at_ms, created_at_ms) AS since, idle_metered_through_ms AS through FROM stream_runtimes`,
  );
  const updateIdleThrough = db.prepare<[number, string]>("UPDATE stream_runtimes SET idle_metered_through_ms = ? WHERE name = ?");
  const updateDesired = db.prepare<[StreamDesiredState, number, string]>(
    "UPDATE stream_runtimes SET desired = ?, updated_at_ms = ? WHERE name = ?",
  );
  const updateState = db.prepare<[StreamState, string | null, number, string]>(
    "UPDATE stream_runtimes SET state = ?, reason = ?, updated_at_ms = ? WHERE name = ?",
  );
  const updateProgress = db.prepare<
    [string | null, number, number, number, number, number, number, number, number | null, number, string]
  >(
    `UPDATE stream_runtimes SET position = COALESCE(?, position), events_in = events_in + ?,
       events_out = events_out + ?, bytes_out = bytes_out + ?, events_filtered = events_filtered + ?,
       events_dead_lettered = events_dead_lettered + ?, retries = retries + ?, throttled_ms = throttled_ms + ?,
       last_event_at_ms = COALESCE(?, last_event_at_ms), updated_at_ms = ?
     WHERE name = ?`,
  );
  const insertDeadLetter = db.prepare<[string, string, string, string, number, string, number]>(
    `INSERT INTO stream_dead_letters (stream, event_id, event_json, reason, attempts, stage, failed_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const deleteDeadLetter = db.prepare<[string, number]>("DELETE FROM stream_dead_letters WHERE stream = ? AND id = ?");
  const selectDeadLetter = db.prepare<[string, number], DeadLetterRow>(
    `SELECT id, stream, event_id AS eventId, event_json AS json, reason, attempts, stage, failed_at_ms AS failedAtMs
     FROM stream_dead_letters WHERE stream = ? AND id = ?`,
  );
  const selectUnbilled = db.prepare<[string], { unbilled: number }>(
    "SELECT cu_ms_unbilled AS unbilled FROM stream_runtimes WHERE name = ?",
  );
  const updateUnbilled = db.prepare<[number, string]>("UPDATE stream_runtimes SET cu_ms_unbilled = ? WHERE name = ?");
  const insertCuChange = db.prepare<[string, number, number, number, string]>(
    "INSERT INTO stream_cu_changes (stream, at_ms, from_cu, to_cu, reason) VALUES (?, ?, ?, ?, ?)",
  );
  const updateCurrentCU = db.prepare<[number, number, string]>(
    "UPDATE stream_runtimes SET current_cu = ?, updated_at_ms = ? WHERE name = ?",
  );
  const selectCuChanges = db.prepare<[string, number], CuChange>(
    `SELECT stream, at_ms AS atMs, from_cu AS fromCU, to_cu AS toCU, reason
     FROM stream_cu_changes WHERE stream = ? ORDER BY id DESC LIMIT ?`,
  );
  const selectDeadLetters = db.prepare<[string, number, number], DeadLetterRow>(
    `SELECT id, stream, event_id AS eventId, event_json AS json, reason, attempts, stage, failed_at_ms AS failedAtMs
     FROM stream_dead_letters WHERE stream = ? AND id > ? ORDER BY id LIMIT ?`,
  );
  const purgeSome = db.transaction((name: string, ids: readonly number[]) =>
    ids.reduce((sum, id) => sum + deleteDeadLetter.run(name, id).changes, 0),
  );

  const commitProgress = db.transaction((name: string, p: StreamProgress) => {
    updateProgress.run(
      p.position ?? null,
      p.eventsIn,
      p.eventsOut,
      p.bytesOut,
      p.eventsFiltered,
      p.deadLetters.length + p.deadLetteredElsewhere,
      p.retries,
      Math.round(p.throttledMs),
      p.eventsIn > 0 ? p.atMs : null,
      p.atMs,
      name,
    );
    for (const dead of p.deadLetters) {
      const id = typeof dead.event.id === "string" ? dead.event.id : "";
      insertDeadLetter.run(name, id, JSON.stringify(dead.event), dead.reason, dead.attempts, dead.stage, p.atMs);
    }
    for (const id of p.redriven ?? []) deleteDeadLetter.run(name, id);
    if (meterUsage && p.meteredEvents > 0) {
      const tally = new UsageTally();
      tally.add(p.atMs, "stream-events", { stream: name }, p.meteredEvents, p.meteredUnits);
      writeUsage(tally);
    }
  });

  const addCapacityTime = db.transaction((name: string, cu: number, ms: number, atMs: number) => {
    const row = selectUnbilled.get(name);
    if (row === undefined) return;
    const total = row.unbilled + Math.round(cu * ms);
    const milliHours = Math.floor(total / CU_MS_PER_MILLI_HOUR);
    updateUnbilled.run(total - milliHours * CU_MS_PER_MILLI_HOUR, name);
    if (meterUsage && milliHours > 0) {
      const tally = new UsageTally();
      tally.add(atMs, "stream-cu-hours", { stream: name }, milliHours, 0);
      writeUsage(tally);
    }
  });

  const meterIdleDays = db.transaction((beforeDayMs: number, idleAfterMs: number): number => {
    let counted = 0;
    const tally = new UsageTally();
    for (const row of selectIdleCandidates.all()) {
      // The first day that starts a full idle period after the last inflow, and after what was counted.
      const firstIdleDay = Math.ceil((row.since + idleAfterMs) / DAY_MS) * DAY_MS;
      const from = Math.max(firstIdleDay, row.through);
      if (from >= beforeDayMs) continue;
      for (let day = from; day < beforeDayMs; day += DAY_MS) tally.add(day, "stream-idle", { stream: row.name }, 1, 0);
      counted += (beforeDayMs - from) / DAY_MS;
      updateIdleThrough.run(beforeDayMs, row.name);
    }
    if (meterUsage && tally.size > 0) writeUsage(tally);
    return counted;
  });

  const recordCuChange = db.transaction((change: CuChange) => {
    insertCuChange.run(change.stream, change.atMs, change.fromCU, change.toCU, change.reason);
    updateCurrentCU.run(change.toCU, change.atMs, change.stream);
  });

  const deleteStream = db.transaction((name: string) => {
    const definitions = deleteDefinition.run(name).changes;
    const runtimes = deleteRuntime.run(name).changes;
    deleteDeadLetters.run(name);
    return definitions + runtimes > 0;
  });

  const toDefinition = (row: { name: string; json: string; createdAtMs: number; updatedAtMs: number }): StoredStreamDefinition => ({
    name: row.name,
    definition: JSON.parse(row.json) as JsonObject,
    createdAtMs: row.createdAtMs,
    updatedAtMs: row.updatedAtMs,
  });

  return {
    listDefinitions: () => guardStorage("listStreams", () => selectDefinitions.all().map(toDefinition)),
    getDefinition(name) {
      const row = guardStorage("getStream", () => selectDefinition.get(name));
      return row === undefined ? undefined : toDefinition(row);
    },
    putDefinition(d) {
      guardStorage("putStream", () => upsertDefinition.run(d.name, JSON.stringify(d.definition), d.createdAtMs, d.updatedAtMs));
    },
    deleteStream: (name) => guardStorage("deleteStream", () => deleteStream(name)),
    runtime(name) {
      const row = guardStorage("streamRuntime", () => selectRuntime.get(name));
      return row === undefined ? undefined : toRuntime(row);
    },
    listRuntimes: () => guardStorage("streamRuntimes", () => selectRuntimes.all().map(toRuntime)),
    ensureRuntime(name, desired, minCU, nowMs) {
      return guardStorage("ensureStreamRuntime", () => {
        insertRuntime.run(name, desired, desired, minCU, nowMs, nowMs);
        return toRuntime(selectRuntime.get(name)!);
      });
    },
    setDesired(name, desired, nowMs) {
      guardStorage("setStreamDesired", () => updateDesired.run(desired, nowMs, name));
    },
    setState(name, state, reason, nowMs) {
      guardStorage("setStreamState", () => updateState.run(state, reason ?? null, nowMs, name));
    },
    commitProgress: (name, progress) => guardStorage("commitStreamProgress", () => commitProgress(name, progress)),
    addCapacityTime: (name, cu, ms, atMs) => guardStorage("addStreamCapacityTime", () => addCapacityTime(name, cu, ms, atMs)),
    meterIdleDays: (beforeDayMs, idleAfterMs) => guardStorage("meterIdleDays", () => meterIdleDays(beforeDayMs, idleAfterMs)),
    recordCuChange: (change) => guardStorage("recordCuChange", () => recordCuChange(change)),
    cuChanges: (name, limit) => guardStorage("cuChanges", () => selectCuChanges.all(name, limit)),
    listDeadLetters(name, afterId, limit): StreamDeadLetter[] {
      return guardStorage("streamDeadLetters", () => selectDeadLetters.all(name, afterId, limit)).map(toDeadLetter);
    },
    getDeadLetters(name, ids): StreamDeadLetter[] {
      const rows = guardStorage("streamDeadLetters", () => ids.map((id) => selectDeadLetter.get(name, id)));
      return rows.filter((r): r is DeadLetterRow => r !== undefined).sort((a, b) => a.id - b.id).map(toDeadLetter);
    },
    purgeDeadLetters(name, ids) {
      return guardStorage("purgeStreamDeadLetters", () => (ids === "all" ? deleteDeadLetters.run(name).changes : purgeSome(name, ids)));
    },
  };
}
