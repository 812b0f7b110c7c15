/**
 * Delivery state on SQLite: pending deliveries, the dispatcher's checkpoint per bus, and dead
 * letters, in the state file (`relaybus-state.db`, see `open-sqlite-storage.ts` for why it is
 * not the log's file). Calls are synchronous, each one transaction on the main thread's
 * connection; the log's commits run in their own thread on their own file and never
 * interleave with these.
 *
 * The request, retry policy and attempts are JSON columns: they are written and read whole,
 * never queried by field. Attempts are appended in SQL (`json_insert`), so a delivery on its
 * 150th retry does not parse and re-serialize its history in JavaScript.
 *
 * Redrive and purge take dead letters in batches, one transaction each, and yield to the
 * event loop in between: this connection is the main thread's, so one transaction over a
 * hundred thousand rows would hold up every request and delivery meanwhile. No index was
 * added for them: bus and time use the existing `dead_letters_bus_dead_at` and
 * `dead_letters_dead_at`; rule, target and reason are checked on the rows those give.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type Database from "better-sqlite3";
import { RelaybusError, errorMessage } from "../../errors.js";
import type { Clock } from "../../types.js";
import type {
  AttemptRecord,
  AttemptToRecord,
  DeadLetter,
  DeadLetterSelection,
  Delivery,
  DeliveryNext,
  DeliveryStore,
  DispatchedDelivery,
  NewDelivery,
  RedriveOptions,
  RedrivePlan,
  RedriveResult,
  RetryPolicy,
  TracedDelivery,
} from "../log-engine.js";
import { guardStorage } from "./storage-error.js";

/** What {@link createSqliteDeliveries} needs: an open, migrated connection to the state file. */
export interface SqliteDeliveriesOptions {
  db: Database.Database;
  clock: Clock;
}

/** Dead letters one `listDeadLetters` call returns when the filter gives no limit. */
export const DEFAULT_DEAD_LETTER_PAGE = 100;
/** Most dead letters one `listDeadLetters` call returns, whatever the filter asks. */
export const MAX_DEAD_LETTER_PAGE = 1_000;
/** Dead letters one redrive or purge transaction takes, by default. */
export const DEAD_LETTER_BATCH = 500;
/** Skipped dead letters a redrive result lists with their reason, by default. */
export const DEFAULT_MAX_SKIPS_LISTED = 100;

interface DeliveryRow {
  id: string;
  bus: string;
  offset: number;
  eventId: string;
  rule: string;
  targetId: string;
  eventReceivedAtMs: number;
  createdAtMs: number;
  nextAttemptAtMs: number;
  retry: string;
  attempts: string;
  request: string;
  orderKey: string | null;
}

interface TracedRow extends DeliveryRow {
  finishedAtMs: number | null;
}

interface DeadLetterRow extends DeliveryRow {
  reason: string;
  deadAtMs: number;
}

const DELIVERY_COLUMNS =
  "id, bus, offset, event_id AS eventId, rule, target_id AS targetId, " +
  "event_received_at_ms AS eventReceivedAtMs, created_at_ms AS createdAtMs, " +
  "next_attempt_at_ms AS nextAttemptAtMs, retry, attempts, request, order_key AS orderKey";
const DEAD_LETTER_COLUMNS = `${DELIVERY_COLUMNS}, reason, dead_at_ms AS deadAtMs`;
const STORED_COLUMNS =
  "id, bus, offset, event_id, rule, target_id, event_received_at_ms, created_at_ms, next_attempt_at_ms, retry, attempts, request, order_key";

/** succeeded_deliveries keeps the request's body apart from the rest of the request. */
const SUCCEEDED_COLUMNS = `${STORED_COLUMNS}, finished_at_ms, body`;

/** How long a checkpoint that carries no deliveries may wait in memory before it is written. */
const CHECKPOINT_FLUSH_MS = 100;

/** The delivery store, plus writing deferred checkpoints before the file closes. */
export interface SqliteDeliveries extends DeliveryStore {
  /** Writes every checkpoint still held in memory (the storage calls it before closing). */
  flushCheckpoints(): void;
}

/** Creates the delivery store on `options.db`. */
export function createSqliteDeliveries(options: SqliteDeliveriesOptions): SqliteDeliveries {
  const { db, clock } = options;

  const upsertCheckpoint = db.prepare<[string, number, number]>(
    `INSERT INTO dispatch_checkpoints (bus, through_offset, updated_at_ms) VALUES (?, ?, ?)
     ON CONFLICT (bus) DO UPDATE SET through_offset = excluded.through_offset, updated_at_ms = excluded.updated_at_ms`,
  );
  // A repeated id is skipped, not an error: a dispatcher that derives ids from (event,
  // target) can hand the same delivery over twice after a crash without failing the batch.
  const insertDelivery = db.prepare<
    StoredValues
  >(
    `INSERT INTO deliveries (${STORED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  );
  // An ordered delivery is due only when no earlier one of its order key waits for a retry:
  // otherwise, after a restart, the ones behind it would go first. (While the engine runs,
  // it holds such a head in memory itself.)
  const selectDue = db.prepare<[number, number, number], DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries AS d WHERE next_attempt_at_ms <= ?
       AND (order_key IS NULL OR NOT EXISTS (
         SELECT 1 FROM deliveries AS e INDEXED BY deliveries_pending_order_key
         WHERE e.order_key = d.order_key AND e.leased = 0 AND e.next_attempt_at_ms > ? AND e.rowid < d.rowid))
     ORDER BY next_attempt_at_ms LIMIT ?`,
  );
  const selectNextDue = db
    .prepare<[], number | null>("SELECT MIN(next_attempt_at_ms) FROM deliveries")
    .pluck();
  const countPending = db.prepare<[], number>("SELECT COUNT(*) FROM deliveries").pluck();
  const appendAttempt = db.prepare<[string, string]>(
    "UPDATE deliveries SET attempts = json_insert(attempts, '$[#]', json(?)) WHERE id = ?",
  );
  const moveToSucceeded = db.prepare<[number, string]>(
    `INSERT INTO succeeded_deliveries (${SUCCEEDED_COLUMNS})
     SELECT ${STORED_COLUMNS.replace("request", "json_remove(request, '$.body')")}, ?, json_extract(request, '$.body')
     FROM deliveries WHERE id = ?`,
  );
  const selectOfEvent = db.prepare<[string, string, string, string], TracedRow>(
    `SELECT ${DELIVERY_COLUMNS}, NULL AS finishedAtMs FROM deliveries WHERE event_id = ? AND bus = ?
     UNION ALL
     SELECT ${DELIVERY_COLUMNS.replace("request", "json_set(request, '$.body', body) AS request")}, finished_at_ms AS finishedAtMs
     FROM succeeded_deliveries WHERE event_id = ? AND bus = ?
     ORDER BY createdAtMs`,
  );
  const selectDeadOfEvent = db.prepare<[string, string], DeadLetterRow>(
    `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters WHERE event_id = ? AND bus = ? ORDER BY created_at_ms, rowid`,
  );
  // Rowids grow with time: each batch looks at the oldest rows only, and the walk stops at
  // the first batch with a row too young, without scanning the rest of the table.
  const deleteFinishedBefore = db.prepare<[number, number]>(
    `DELETE FROM succeeded_deliveries WHERE rowid IN
     (SELECT rowid FROM (SELECT rowid, finished_at_ms FROM succeeded_deliveries ORDER BY rowid LIMIT ?)
      WHERE finished_at_ms < ?)`,
  );
  const leaseRow = db.prepare<[number, string]>(
    "UPDATE deliveries SET next_attempt_at_ms = ?, leased = 1 WHERE id = ?",
  );
  const markLeased = db.prepare<[string]>("UPDATE deliveries SET leased = 1 WHERE id = ?");
  const reschedule = db.prepare<[number, string]>(
    "UPDATE deliveries SET next_attempt_at_ms = ?, leased = 0 WHERE id = ?",
  );
  const deletePending = db.prepare<[string]>("DELETE FROM deliveries WHERE id = ?");
  const movePendingToDead = db.prepare<[string, number, string]>(
    `INSERT INTO dead_letters (${STORED_COLUMNS}, reason, dead_at_ms)
     SELECT ${STORED_COLUMNS}, ?, ? FROM deliveries WHERE id = ? ON CONFLICT (id) DO NOTHING`,
  );
  const insertDead = db.prepare<[...StoredValues, string, number]>(
    `INSERT INTO dead_letters (${STORED_COLUMNS}, reason, dead_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  );
  const selectDeadLetter = db.prepare<[string], DeadLetterRow>(
    `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?`,
  );

  // This file belongs to one process, and a lease to the process that took it: one left by
  // a process that stopped (crashed, or closed with attempts in flight) would only delay its
  // delivery by the rest of the lease, and put an ordered delivery behind the ones after it.
  // So leases end when the file opens: those deliveries are due at once, in their order.
  db.prepare("UPDATE deliveries SET next_attempt_at_ms = created_at_ms, leased = 0 WHERE leased = 1").run();

  /** Checkpoints, read once at open: the dispatcher asks on every pass. */
  const checkpoints = new Map<string, number>();
  for (const row of db
    .prepare<[], { bus: string; throughOffset: number }>(
      "SELECT bus, through_offset AS throughOffset FROM dispatch_checkpoints",
    )
    .all()) {
    checkpoints.set(row.bus, row.throughOffset);
  }

  /** Buses whose checkpoint moved in memory but is not written yet; see commitDispatch. */
  const unwritten = new Set<string>();
  let flushTimer: NodeJS.Timeout | undefined;
  const writeCheckpoints = db.transaction((buses: string[], nowMs: number) => {
    for (const bus of buses) upsertCheckpoint.run(bus, checkpoints.get(bus) ?? 0, nowMs);
  });
  function flushCheckpoints(): void {
    if (flushTimer !== undefined) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (unwritten.size === 0) return;
    const buses = [...unwritten];
    unwritten.clear();
    try {
      guardStorage("commitDispatch", () => writeCheckpoints(buses, clock.nowMs()));
    } catch {
      // Written next time; until then a restart re-dispatches a few events (at least once).
      for (const bus of buses) unwritten.add(bus);
    }
  }

  const insertPending = (d: NewDelivery) => insertDelivery.run(...storedColumns(d));

  const enqueue = db.transaction((deliveries: readonly NewDelivery[]) => {
    for (const d of deliveries) insertPending(d);
  });

  const insertSucceeded = db.prepare<[...StoredValues, number, string]>(
    `INSERT INTO succeeded_deliveries (${SUCCEEDED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const storeDispatched = (item: DispatchedDelivery, nowMs: number) => {
    const { delivery, first } = item;
    if (first?.next.kind === "succeeded") {
      // The body in its own column: inside the request's JSON it would be escaped again.
      const { body, ...rest } = delivery.request;
      const values = storedColumns(delivery, JSON.stringify(rest));
      values[10] = JSON.stringify([first.attempt]);
      insertSucceeded.run(...values, nowMs, body);
      return;
    }
    const values = storedColumns(delivery);
    if (item.deadReason !== undefined) {
      insertDead.run(...values, item.deadReason, nowMs);
      return;
    }
    if (first === undefined) {
      if (item.heldUntilMs === undefined) {
        insertDelivery.run(...values);
      } else {
        values[8] = item.heldUntilMs;
        if (insertDelivery.run(...values).changes > 0) markLeased.run(delivery.id);
      }
      return;
    }
    values[10] = JSON.stringify([first.attempt]);
    switch (first.next.kind) {
      case "retry":
        values[8] = first.next.nextAttemptAtMs;
        insertDelivery.run(...values);
        break;
      case "dead":
        insertDead.run(...values, first.next.reason, nowMs);
        break;
    }
  };
  const dispatchTried = db.transaction(
    (bus: string, throughOffset: number, dispatched: readonly DispatchedDelivery[], nowMs: number) => {
      for (const item of dispatched) storeDispatched(item, nowMs);
      upsertCheckpoint.run(bus, throughOffset, nowMs);
    },
  );

  const dispatch = db.transaction(
    (bus: string, throughOffset: number, deliveries: readonly NewDelivery[], nowMs: number) => {
      for (const d of deliveries) insertPending(d);
      upsertCheckpoint.run(bus, throughOffset, nowMs);
    },
  );

  const applyAttempt = (id: string, attempt: AttemptRecord, next: DeliveryNext): boolean => {
    if (appendAttempt.run(JSON.stringify(attempt), id).changes === 0) return false;
    switch (next.kind) {
      case "succeeded":
        moveToSucceeded.run(clock.nowMs(), id);
        deletePending.run(id);
        break;
      case "retry":
        reschedule.run(next.nextAttemptAtMs, id);
        break;
      case "dead":
        movePendingToDead.run(next.reason, clock.nowMs(), id);
        deletePending.run(id);
        break;
    }
    return true;
  };
  // One transaction for every attempt that finished in an event-loop turn: a commit costs
  // far more than the few row writes of an attempt, and at 256 in flight many end together.
  const applyAttempts = db.transaction((records: readonly AttemptToRecord[]): string[] => {
    const notPending: string[] = [];
    for (const r of records) {
      if (!applyAttempt(r.deliveryId, r.attempt, r.next)) notPending.push(r.deliveryId);
    }
    return notPending;
  });

  // Leasing is a write per pump (the rows taken get a new next_attempt_at_ms) instead of,
  // before, a read per pump of `limit + in flight` rows to skip the ones in flight in
  // JavaScript: that scan grew with the attempts in flight and re-read all of them on every
  // pump. A lease outlives its process only until the file is opened again (see above).
  const lease = db.transaction((nowMs: number, limit: number, leaseMarginMs: number) => {
    const taken: Delivery[] = [];
    for (const row of selectDue.all(nowMs, nowMs, limit)) {
      const delivery = toDelivery(row);
      delivery.nextAttemptAtMs = nowMs + delivery.request.timeoutMs + leaseMarginMs;
      leaseRow.run(delivery.nextAttemptAtMs, delivery.id);
      taken.push(delivery);
    }
    return taken;
  });

  const moveToDead = db.transaction((d: NewDelivery, reason: string) => {
    const deadAtMs = clock.nowMs();
    // Pending already: keep the stored row, with the attempts it has had.
    if (movePendingToDead.run(reason, deadAtMs, d.id).changes > 0) {
      deletePending.run(d.id);
      return;
    }
    insertDead.run(...storedColumns(d), reason, deadAtMs);
  });

  /** Statements whose text depends on which selection fields are given, made on first use. */
  const statements = new Map<string, Database.Statement<unknown[], unknown>>();
  const prepared = <Row>(sql: string) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare<unknown[], unknown>(sql);
      statements.set(sql, statement);
    }
    return statement as Database.Statement<unknown[], Row>;
  };

  const selectDeadExists = db
    .prepare<[string], number>("SELECT 1 FROM dead_letters WHERE id = ?")
    .pluck();
  const deleteDead = db.prepare<[string]>("DELETE FROM dead_letters WHERE id = ?");
  // The row moves as it is (id, attempts, times); due now, with the plan's request and policy.
  const insertRedriven = db.prepare<[number, string, string, string]>(
    `INSERT INTO deliveries (${STORED_COLUMNS})
     SELECT id, bus, offset, event_id, rule, target_id, event_received_at_ms, created_at_ms, ?, ?, attempts, ?, order_key
     FROM dead_letters WHERE id = ? ON CONFLICT (id) DO NOTHING`,
  );

  function deferCheckpoint(bus: string, throughOffset: number): void {
    checkpoints.set(bus, throughOffset);
    unwritten.add(bus);
    flushTimer ??= setTimeout(flushCheckpoints, CHECKPOINT_FLUSH_MS);
    flushTimer.unref();
  }

  function assertForward(bus: string, throughOffset: number): void {
    const current = checkpoints.get(bus) ?? 0;
    if (!Number.isInteger(throughOffset) || throughOffset < current) {
      // Moving back would re-dispatch events already handed over: a dispatcher bug.
      throw new RelaybusError(
        "InternalError",
        `checkpoint of bus "${bus}" cannot move from ${current} to ${throughOffset}`,
        { details: { bus, checkpoint: current, throughOffset } },
      );
    }
  }

  type BatchItem = { letter: DeadLetter; plan: RedrivePlan };
  const redriveBatch = db.transaction((items: readonly BatchItem[], nowMs: number) => {
    let redriven = 0;
    const skips: { id: string; reason: string }[] = [];
    for (const { letter, plan } of items) {
      if ("skip" in plan) {
        skips.push({ id: letter.id, reason: plan.skip });
        continue;
      }
      const retry = JSON.stringify(freshBudget(plan.retry, letter, nowMs));
      if (insertRedriven.run(nowMs, retry, JSON.stringify(plan.request), letter.id).changes > 0) {
        deleteDead.run(letter.id);
        redriven++;
      } else if (selectDeadExists.get(letter.id) !== undefined) {
        // Pending already (a dispatch repeated after a crash): sending it twice helps nobody.
        skips.push({ id: letter.id, reason: "a delivery with this id is pending already" });
      }
      // Otherwise it was purged since the batch was read: neither redriven nor skipped.
    }
    return { redriven, skips };
  });

  return {
    checkpoint(bus) {
      return checkpoints.get(bus) ?? 0;
    },
    commitDispatched(bus, throughOffset, dispatched) {
      assertForward(bus, throughOffset);
      if (dispatched.length === 0) {
        deferCheckpoint(bus, throughOffset);
        return;
      }
      guardStorage("commitDispatch", () =>
        dispatchTried.immediate(bus, throughOffset, dispatched, clock.nowMs()),
      );
      checkpoints.set(bus, throughOffset);
      unwritten.delete(bus);
    },
    commitDispatch(bus, throughOffset, deliveries) {
      assertForward(bus, throughOffset);
      if (deliveries.length === 0) {
        // Nothing became pending, so nothing can be lost by writing this checkpoint a
        // little later: after a crash the dispatcher re-reads events that produced no
        // deliveries. Most batches of a busy bus are like this; deferring spares a write
        // transaction per batch on the ingest thread.
        deferCheckpoint(bus, throughOffset);
        return;
      }
      guardStorage("commitDispatch", () =>
        dispatch.immediate(bus, throughOffset, deliveries, clock.nowMs()),
      );
      checkpoints.set(bus, throughOffset);
      unwritten.delete(bus);
    },
    flushCheckpoints,
    due(nowMs, limit) {
      if (limit <= 0) return [];
      return guardStorage("due", () => selectDue.all(nowMs, nowMs, limit)).map(toDelivery);
    },
    leaseDue(nowMs, limit, leaseMarginMs) {
      if (limit <= 0) return [];
      return guardStorage("leaseDue", () => lease.immediate(nowMs, limit, leaseMarginMs));
    },
    nextDueAtMs() {
      return guardStorage("nextDueAtMs", () => selectNextDue.get()) ?? undefined;
    },
    recordAttempts(records) {
      if (records.length === 0) return [];
      return guardStorage("recordAttempts", () => applyAttempts.immediate(records));
    },
    recordAttempt(deliveryId, attempt, next) {
      const [notPending] = guardStorage("recordAttempt", () =>
        applyAttempts.immediate([{ deliveryId, attempt, next }]),
      );
      if (notPending !== undefined) {
        throw new RelaybusError("InternalError", `delivery "${deliveryId}" is not pending`, {
          details: { deliveryId },
        });
      }
    },
    enqueue(deliveries) {
      if (deliveries.length === 0) return;
      guardStorage("enqueue", () => enqueue.immediate(deliveries));
    },
    deliveriesOfEvent(bus, eventId) {
      return guardStorage("deliveriesOfEvent", () => ({
        deliveries: uniqueById(selectOfEvent.all(eventId, bus, eventId, bus)).map((row) => {
          const delivery: TracedDelivery = toDelivery(row);
          if (row.finishedAtMs !== null) delivery.finishedAtMs = row.finishedAtMs;
          return delivery;
        }),
        deadLetters: selectDeadOfEvent.all(eventId, bus).map(toDeadLetter),
      }));
    },
    async pruneFinished(cutoffMs) {
      let pruned = 0;
      for (;;) {
        const { changes } = guardStorage("pruneFinished", () => deleteFinishedBefore.run(DEAD_LETTER_BATCH, cutoffMs));
        pruned += changes;
        if (changes < DEAD_LETTER_BATCH) return pruned;
        await yieldToEventLoop();
      }
    },
    deadLetter(delivery, reason) {
      guardStorage("deadLetter", () => moveToDead.immediate(delivery, reason));
    },
    pendingCount() {
      return guardStorage("pendingCount", () => countPending.get()) ?? 0;
    },
    listDeadLetters(filter) {
      const where = selectionWhere(filter);
      if (filter.beforeMs !== undefined) where.add("dead_at_ms < ?", filter.beforeMs);
      const limit = Math.min(
        Math.max(1, Math.floor(filter.limit ?? DEFAULT_DEAD_LETTER_PAGE)),
        MAX_DEAD_LETTER_PAGE,
      );
      const sql =
        `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters ${where.sql()} ` +
        "ORDER BY dead_at_ms DESC, id LIMIT ?";
      return guardStorage("listDeadLetters", () =>
        prepared<DeadLetterRow>(sql).all(...where.params, limit),
      ).map(toDeadLetter);
    },
    getDeadLetter(id) {
      const row = guardStorage("getDeadLetter", () => selectDeadLetter.get(id));
      return row === undefined ? undefined : toDeadLetter(row);
    },
    async redriveDeadLetters(selection, options: RedriveOptions = {}) {
      const batchSize = Math.max(1, options.batchSize ?? DEAD_LETTER_BATCH);
      const maxSkipsListed = options.maxSkipsListed ?? DEFAULT_MAX_SKIPS_LISTED;
      const prepare =
        options.prepare ??
        ((letter: DeadLetter) => ({ request: letter.request, retry: letter.retry }));
      const result: RedriveResult = { redriven: 0, skipped: 0, skips: [] };
      const where = selectionWhere(selection);
      where.add("dead_at_ms <= ?", clock.nowMs());
      // Keyset paging in (dead_at_ms, id) order: skipped rows stay in the table, so "the
      // first batch still there" would find them again. Its values go last, per batch.
      where.add("(dead_at_ms > ? OR (dead_at_ms = ? AND id > ?))");
      const sql =
        `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters ${where.sql()} ` +
        "ORDER BY dead_at_ms, id LIMIT ?";
      let after = { deadAtMs: Number.MIN_SAFE_INTEGER, id: "" };
      for (;;) {
        const { deadAtMs, id } = after;
        const letters = guardStorage("redriveDeadLetters", () =>
          prepared<DeadLetterRow>(sql).all(...where.params, deadAtMs, deadAtMs, id, batchSize),
        ).map(toDeadLetter);
        if (letters.length === 0) break;
        const last = letters[letters.length - 1]!;
        after = { deadAtMs: last.deadAtMs, id: last.id };
        const items = await Promise.all(
          letters.map(async (letter): Promise<BatchItem> => {
            try {
              return { letter, plan: await prepare(letter) };
            } catch (error) {
              return { letter, plan: { skip: `cannot prepare the redrive: ${errorMessage(error)}` } };
            }
          }),
        );
        const done = guardStorage("redriveDeadLetters", () =>
          redriveBatch.immediate(items, clock.nowMs()),
        );
        result.redriven += done.redriven;
        result.skipped += done.skips.length;
        for (const skip of done.skips) {
          if (result.skips.length < maxSkipsListed) result.skips.push(skip);
        }
        if (letters.length < batchSize) break;
        await yieldToEventLoop();
      }
      return result;
    },
    async purgeDeadLetters(selection) {
      const where = selectionWhere(selection);
      where.add("dead_at_ms <= ?", clock.nowMs());
      const sql =
        "DELETE FROM dead_letters WHERE rowid IN " +
        `(SELECT rowid FROM dead_letters ${where.sql()} LIMIT ?)`;
      let purged = 0;
      for (;;) {
        const { changes } = guardStorage("purgeDeadLetters", () =>
          prepared(sql).run(...where.params, DEAD_LETTER_BATCH),
        );
        purged += changes;
        if (changes < DEAD_LETTER_BATCH) return purged;
        await yieldToEventLoop();
      }
    },
  };
}

function toDelivery(row: DeliveryRow): Delivery {
  return {
    id: row.id,
    bus: row.bus,
    offset: row.offset,
    eventId: row.eventId,
    rule: row.rule,
    targetId: row.targetId,
    request: JSON.parse(row.request) as Delivery["request"],
    retry: JSON.parse(row.retry) as Delivery["retry"],
    eventReceivedAtMs: row.eventReceivedAtMs,
    createdAtMs: row.createdAtMs,
    attempts: JSON.parse(row.attempts) as AttemptRecord[],
    nextAttemptAtMs: row.nextAttemptAtMs,
    ...(row.orderKey === null ? {} : { orderKey: row.orderKey }),
  };
}

/** The first row of each delivery id (a dispatch repeated after a crash may store one twice). */
function uniqueById<Row extends { id: string }>(rows: Row[]): Row[] {
  const seen = new Set<string>();
  return rows.filter((row) => !seen.has(row.id) && seen.add(row.id) !== undefined);
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return { ...toDelivery(row), reason: row.reason, deadAtMs: row.deadAtMs };
}

/**
 * The values of STORED_COLUMNS for a delivery never attempted, in their order: due at once
 * (the first attempt is not delayed), with no attempts yet.
 */
type StoredValues = [
  string,
  string,
  number,
  string,
  string,
  string,
  number,
  number,
  number,
  string,
  string,
  string,
  string | null,
];

function storedColumns(d: NewDelivery, requestJson: string = JSON.stringify(d.request)): StoredValues {
  return [
    d.id,
    d.bus,
    d.offset,
    d.eventId,
    d.rule,
    d.targetId,
    d.eventReceivedAtMs,
    d.createdAtMs,
    d.createdAtMs,
    retryJson(d.retry),
    "[]",
    requestJson,
    d.orderKey ?? null,
  ];
}

/** Retry policies as JSON, by object: deliveries of one target share their policy object. */
const retryJsonCache = new WeakMap<RetryPolicy, string>();

function retryJson(policy: RetryPolicy): string {
  let json = retryJsonCache.get(policy);
  if (json === undefined) {
    json = JSON.stringify(policy);
    retryJsonCache.set(policy, json);
  }
  return json;
}

/** A WHERE clause being built: conditions joined by AND, with their parameters in order. */
interface Where {
  add(condition: string, ...params: unknown[]): void;
  sql(): string;
  readonly params: unknown[];
}

/** The conditions of a selection; every field given must hold. */
function selectionWhere(selection: DeadLetterSelection): Where {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const where: Where = {
    add(condition, ...values) {
      conditions.push(condition);
      params.push(...values);
    },
    sql: () => (conditions.length === 0 ? "" : `WHERE ${conditions.join(" AND ")}`),
    params,
  };
  if (selection.bus !== undefined) where.add("bus = ?", selection.bus);
  if (selection.rule !== undefined) where.add("rule = ?", selection.rule);
  if (selection.targetId !== undefined) where.add("target_id = ?", selection.targetId);
  // LIKE ignores ASCII case; the escapes make % and _ in the text plain characters.
  if (selection.reason !== undefined) {
    where.add("reason LIKE ? ESCAPE '\\'", `%${selection.reason.replace(/[\\%_]/g, "\\$&")}%`);
  }
  if (selection.fromMs !== undefined) where.add("dead_at_ms >= ?", selection.fromMs);
  if (selection.toMs !== undefined) where.add("dead_at_ms <= ?", selection.toMs);
  // One parameter whatever the number of ids, so the statement is prepared once.
  if (selection.ids !== undefined) {
    where.add("id IN (SELECT value FROM json_each(?))", JSON.stringify(selection.ids));
  }
  return where;
}

/**
 * The retry policy of a redriven delivery: `policy` (the stored one, or the target's
 * current one) on top of what the dead letter had spent, so that it gets the whole budget
 * again while its attempts list, which numbers the next attempts, keeps the earlier ones. A
 * policy that was widened by an earlier redrive is brought back to its own budget first,
 * so that budgets do not pile up over redrives. Retries back off from where the earlier
 * attempts stopped (the delay grows with the attempt number, capped at `maxDelayMs`).
 */
function freshBudget(policy: RetryPolicy, letter: DeadLetter, nowMs: number): RetryPolicy {
  const { spentBeforeRedrive: earlier, ...own } = policy;
  const maxAttempts = Math.max(1, own.maxAttempts - (earlier?.attempts ?? 0));
  const maxAgeSeconds = Math.max(1, own.maxAgeSeconds - (earlier?.ageSeconds ?? 0));
  const spent = {
    attempts: letter.attempts.length,
    ageSeconds: Math.max(0, Math.ceil((nowMs - letter.eventReceivedAtMs) / 1000)),
  };
  return {
    ...own,
    maxAttempts: maxAttempts + spent.attempts,
    maxAgeSeconds: maxAgeSeconds + spent.ageSeconds,
    spentBeforeRedrive: spent,
  };
}

