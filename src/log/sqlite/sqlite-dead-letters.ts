/**
 * Dead letters on SQLite: listing with filters, one with its payload and attempts, redrive
 * and purge. Redrive and purge take dead letters in batches, one transaction each, and yield
 * to the event loop in between: this connection is the main thread's, so one transaction over
 * a hundred thousand rows would hold up every request and delivery meanwhile. No index was
 * added for them: bus and time use `dead_letters_bus_dead_at` and `dead_letters_dead_at`;
 * rule, target and reason are checked on the rows those give. Every dead letter redriven
 * counts on the `redrive` meter, in its batch's transaction.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type Database from "better-sqlite3";
import { errorMessage } from "../../errors.js";
import type { Clock } from "../../types.js";
import type {
  DeadLetter,
  DeadLetterSelection,
  DeliveryStore,
  RedriveOptions,
  RedrivePlan,
  RedriveResult,
  RetryPolicy,
} from "../log-engine.js";
import { unitsOfText } from "../usage-store.js";
import {
  DEAD_LETTER_COLUMNS,
  STORED_COLUMNS,
  toDeadLetter,
  type DeadLetterRow,
} from "./delivery-rows.js";
import { statementCache } from "./statement-cache.js";
import { guardStorage } from "./storage-error.js";
import { UsageTally } from "./sqlite-usage.js";

/** Dead letters one `listDeadLetters` call returns when the filter gives no limit. */
export const DEFAULT_DEAD_LETTER_PAGE = 100;
/** Most dead letters one `listDeadLetters` call returns, whatever the filter asks. */
export const MAX_DEAD_LETTER_PAGE = 1_000;
/** Dead letters one redrive or purge transaction takes, by default. */
export const DEAD_LETTER_BATCH = 500;
/** Skipped dead letters a redrive result lists with their reason, by default. */
export const DEFAULT_MAX_SKIPS_LISTED = 100;

/** The dead-letter part of the delivery store. */
export type SqliteDeadLetters = Pick<
  DeliveryStore,
  "listDeadLetters" | "getDeadLetter" | "redriveDeadLetters" | "purgeDeadLetters"
>;

/** What {@link createSqliteDeadLetters} needs. */
export interface SqliteDeadLettersOptions {
  db: Database.Database;
  clock: Clock;
  /** Count redrives on the `redrive` meter. */
  meterUsage: boolean;
  /** Writes a tally of usage, inside the caller's transaction. */
  writeUsage(tally: UsageTally): void;
}

/** Creates the dead letters on `options.db`. */
export function createSqliteDeadLetters(options: SqliteDeadLettersOptions): SqliteDeadLetters {
  const { db, clock, meterUsage, writeUsage } = options;
  const selectDeadLetter = db.prepare<[string], DeadLetterRow>(
    `SELECT ${DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?`,
  );

  /** Statements whose text depends on which selection fields are given, made on first use. */
  const prepared = statementCache(db);

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

  type BatchItem = { letter: DeadLetter; plan: RedrivePlan };
  const redriveBatch = db.transaction((items: readonly BatchItem[], nowMs: number) => {
    let redriven = 0;
    const skips: { id: string; reason: string }[] = [];
    const redrives = new UsageTally();
    for (const { letter, plan } of items) {
      if ("skip" in plan) {
        skips.push({ id: letter.id, reason: plan.skip });
        continue;
      }
      const retry = JSON.stringify(freshBudget(plan.retry, letter, nowMs));
      if (insertRedriven.run(nowMs, retry, JSON.stringify(plan.request), letter.id).changes > 0) {
        deleteDead.run(letter.id);
        redriven++;
        if (meterUsage) {
          const target = { bus: letter.bus, rule: letter.rule, target: letter.targetId };
          redrives.add(nowMs, "redrive", target, 1, unitsOfText(plan.request.body));
        }
      } else if (selectDeadExists.get(letter.id) !== undefined) {
        // Pending already (a dispatch repeated after a crash): sending it twice helps nobody.
        skips.push({ id: letter.id, reason: "a delivery with this id is pending already" });
      }
      // Otherwise it was purged since the batch was read: neither redriven nor skipped.
    }
    writeUsage(redrives);
    return { redriven, skips };
  });

  return {
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
              return {
                letter,
                plan: { skip: `cannot prepare the redrive: ${errorMessage(error)}` },
              };
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
