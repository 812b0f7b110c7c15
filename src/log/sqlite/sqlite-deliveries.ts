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
 * Listing, redriving and purging dead letters is `sqlite-dead-letters.ts`; the row layout
 * both share is `delivery-rows.ts`.
 *
 * Metering: every attempt recorded here (first attempts in `commitDispatched`, later ones in
 * `recordAttempts`) counts on the `push` meter, and every dead letter redriven on `redrive`,
 * in the same transaction. A batch's counts are added up in JavaScript first and written as
 * one upsert per (hour, bus, rule, target), never one statement per attempt.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type Database from "better-sqlite3";
import { RelaybusError } from "../../errors.js";
import type { Clock } from "../../types.js";
import type {
  AttemptRecord,
  AttemptToRecord,
  Delivery,
  DeliveryNext,
  DeliveryStore,
  DispatchedDelivery,
  NewDelivery,
  TracedDelivery,
} from "../log-engine.js";
import { unitsOfBytes, unitsOfText } from "../usage-store.js";
import {
  DEAD_LETTER_COLUMNS,
  DELIVERY_COLUMNS,
  STORED_COLUMNS,
  SUCCEEDED_COLUMNS,
  storedColumns,
  toDeadLetter,
  toDelivery,
  uniqueById,
  type AttemptedRow,
  type DeadLetterRow,
  type DeliveryRow,
  type StoredValues,
  type TracedRow,
} from "./delivery-rows.js";
import { createSqliteDeadLetters, DEAD_LETTER_BATCH } from "./sqlite-dead-letters.js";
import { guardStorage } from "./storage-error.js";
import { createUsageWriter, UsageTally } from "./sqlite-usage.js";

/** What {@link createSqliteDeliveries} needs: an open, migrated connection to the state file. */
export interface SqliteDeliveriesOptions {
  db: Database.Database;
  clock: Clock;
  /** Count attempts (`push`) and redriven dead letters (`redrive`) into usage. Default true. */
  meterUsage?: boolean;
}

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
  const meterUsage = options.meterUsage ?? true;
  const writeUsage = createUsageWriter(db, clock);

  const upsertCheckpoint = db.prepare<[string, number, number]>(
    `INSERT INTO dispatch_checkpoints (bus, through_offset, updated_at_ms) VALUES (?, ?, ?)
     ON CONFLICT (bus) DO UPDATE SET through_offset = excluded.through_offset, updated_at_ms = excluded.updated_at_ms`,
  );
  // A repeated id is skipped, not an error: a dispatcher that derives ids from (event,
  // target) can hand the same delivery over twice after a crash without failing the batch.
  const insertDelivery = db.prepare<StoredValues>(
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
  // RETURNING gives what the push meter counts the attempt under, in the same statement.
  const appendAttempt = db.prepare<[string, string], AttemptedRow>(
    `UPDATE deliveries SET attempts = json_insert(attempts, '$[#]', json(?)) WHERE id = ?
     RETURNING ${meterUsage ? "bus, rule, target_id AS targetId, octet_length(json_extract(request, '$.body')) AS bodyBytes" : "bus"}`,
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
  const selectPending = db.prepare<[string], DeliveryRow & { leased: number }>(
    `SELECT ${DELIVERY_COLUMNS}, leased FROM deliveries WHERE id = ?`,
  );
  const take = db.transaction((ids: readonly string[], nowMs: number) => {
    const taken: Delivery[] = [];
    for (const id of ids) {
      const row = selectPending.get(id);
      if (row === undefined) continue;
      deletePending.run(id);
      const delivery = toDelivery(row);
      // Leased: the engine held it, due already (its time is the lease's end, not a retry's).
      if (row.leased === 1) delivery.nextAttemptAtMs = Math.min(delivery.nextAttemptAtMs, nowMs);
      taken.push(delivery);
    }
    return taken;
  });
  const adopt = db.transaction((deliveries: readonly Delivery[]) => {
    for (const d of deliveries) {
      const values = storedColumns(d);
      values[8] = d.nextAttemptAtMs;
      values[10] = JSON.stringify(d.attempts);
      insertDelivery.run(...values);
    }
  });
  const movePendingToDead = db.prepare<[string, number, string]>(
    `INSERT INTO dead_letters (${STORED_COLUMNS}, reason, dead_at_ms)
     SELECT ${STORED_COLUMNS}, ?, ? FROM deliveries WHERE id = ? ON CONFLICT (id) DO NOTHING`,
  );
  const insertDead = db.prepare<[...StoredValues, string, number]>(
    `INSERT INTO dead_letters (${STORED_COLUMNS}, reason, dead_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  );
  // This file belongs to one process, and a lease to the process that took it: one left by
  // a process that stopped (crashed, or closed with attempts in flight) would only delay its
  // delivery by the rest of the lease, and put an ordered delivery behind the ones after it.
  // So leases end when the file opens: those deliveries are due at once, in their order.
  db.prepare(
    "UPDATE deliveries SET next_attempt_at_ms = created_at_ms, leased = 0 WHERE leased = 1",
  ).run();

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

  // The stored columns go as one array argument (better-sqlite3 binds its elements in turn):
  // spread into the call, they took V8's slow arguments path once per delivery.
  const insertSucceeded = db.prepare<[StoredValues, number, string | null]>(
    `INSERT INTO succeeded_deliveries (${SUCCEEDED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const storeDispatched = (item: DispatchedDelivery, nowMs: number) => {
    const { delivery, first } = item;
    if (first?.next.kind === "succeeded") {
      // The body in its own column: inside the request's JSON it would be escaped again.
      // The rest of the request is spelled out rather than taken with `...rest`, which
      // copied the object property by property on V8's slow path.
      const { url, headers, body, timeoutMs } = delivery.request;
      const values = storedColumns(delivery, JSON.stringify({ url, headers, timeoutMs }));
      values[10] = `[${JSON.stringify(first.attempt)}]`;
      // NULL: the body is the event's stored JSON, which the log holds (the trace reads it there).
      insertSucceeded.run(values, nowMs, delivery.bodyIsEvent === true ? null : body);
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
    (
      bus: string,
      throughOffset: number,
      dispatched: readonly DispatchedDelivery[],
      nowMs: number,
    ) => {
      for (const item of dispatched) storeDispatched(item, nowMs);
      upsertCheckpoint.run(bus, throughOffset, nowMs);
      if (meterUsage) {
        const pushes = new UsageTally();
        for (const { delivery: d, first } of dispatched) {
          if (first === undefined) continue; // not attempted yet, or dead-lettered unsent
          pushes.add(
            first.attempt.startedAtMs,
            "push",
            { bus: d.bus, rule: d.rule, target: d.targetId },
            1,
            unitsOfText(d.request.body),
          );
        }
        writeUsage(pushes);
      }
    },
  );

  const dispatch = db.transaction(
    (bus: string, throughOffset: number, deliveries: readonly NewDelivery[], nowMs: number) => {
      for (const d of deliveries) insertPending(d);
      upsertCheckpoint.run(bus, throughOffset, nowMs);
    },
  );

  const applyAttempt = (
    id: string,
    attempt: AttemptRecord,
    next: DeliveryNext,
    pushes: UsageTally,
  ): boolean => {
    const attempted = appendAttempt.get(JSON.stringify(attempt), id);
    if (attempted === undefined) return false;
    if (meterUsage) {
      const target = { bus: attempted.bus, rule: attempted.rule, target: attempted.targetId };
      pushes.add(attempt.startedAtMs, "push", target, 1, unitsOfBytes(attempted.bodyBytes ?? 0));
    }
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
    const pushes = new UsageTally();
    for (const r of records) {
      if (!applyAttempt(r.deliveryId, r.attempt, r.next, pushes)) notPending.push(r.deliveryId);
    }
    writeUsage(pushes);
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

  const deadLetters = createSqliteDeadLetters({ db, clock, meterUsage, writeUsage });

  return {
    ...deadLetters,
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
    take(ids) {
      if (ids.length === 0) return [];
      return guardStorage("take", () => take.immediate(ids, clock.nowMs()));
    },
    adopt(deliveries) {
      if (deliveries.length === 0) return;
      guardStorage("adopt", () => adopt.immediate(deliveries));
    },
    enqueue(deliveries) {
      if (deliveries.length === 0) return;
      guardStorage("enqueue", () => enqueue.immediate(deliveries));
    },
    deliveriesOfEvent(bus, eventId) {
      return guardStorage("deliveriesOfEvent", () => ({
        deliveries: uniqueById(selectOfEvent.all(eventId, bus, eventId, bus)).map((row) => {
          const delivery: TracedDelivery = toDelivery(row);
          if (delivery.request.body === null) {
            delivery.request.body = "";
            delivery.bodyByReference = true;
          }
          if (row.finishedAtMs !== null) delivery.finishedAtMs = row.finishedAtMs;
          return delivery;
        }),
        deadLetters: selectDeadOfEvent.all(eventId, bus).map(toDeadLetter),
      }));
    },
    async pruneFinished(cutoffMs) {
      let pruned = 0;
      for (;;) {
        const { changes } = guardStorage("pruneFinished", () =>
          deleteFinishedBefore.run(DEAD_LETTER_BATCH, cutoffMs),
        );
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
  };
}
