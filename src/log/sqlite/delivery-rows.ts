/**
 * How deliveries and dead letters are laid out in the state file's rows: the columns, the
 * rows as read, and the conversions both ways. Shared by the delivery store and the dead
 * letters (`sqlite-deliveries.ts`, `sqlite-dead-letters.ts`).
 */
import type {
  AttemptRecord,
  DeadLetter,
  Delivery,
  NewDelivery,
  RetryPolicy,
} from "../log-engine.js";

export interface DeliveryRow {
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

export interface TracedRow extends DeliveryRow {
  finishedAtMs: number | null;
}

/** What recording an attempt returns: the delivery's target and, when metered, its body's size. */
export interface AttemptedRow {
  bus: string;
  rule?: string;
  targetId?: string;
  bodyBytes?: number | null;
}

export interface DeadLetterRow extends DeliveryRow {
  reason: string;
  deadAtMs: number;
}

export const DELIVERY_COLUMNS =
  "id, bus, offset, event_id AS eventId, rule, target_id AS targetId, " +
  "event_received_at_ms AS eventReceivedAtMs, created_at_ms AS createdAtMs, " +
  "next_attempt_at_ms AS nextAttemptAtMs, retry, attempts, request, order_key AS orderKey";
export const DEAD_LETTER_COLUMNS = `${DELIVERY_COLUMNS}, reason, dead_at_ms AS deadAtMs`;
export const STORED_COLUMNS =
  "id, bus, offset, event_id, rule, target_id, event_received_at_ms, created_at_ms, next_attempt_at_ms, retry, attempts, request, order_key";

/** succeeded_deliveries keeps the request's body apart from the rest of the request. */
export const SUCCEEDED_COLUMNS = `${STORED_COLUMNS}, finished_at_ms, body`;

export function toDelivery(row: DeliveryRow): Delivery {
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
export function uniqueById<Row extends { id: string }>(rows: Row[]): Row[] {
  const seen = new Set<string>();
  return rows.filter((row) => !seen.has(row.id) && seen.add(row.id) !== undefined);
}

export function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return { ...toDelivery(row), reason: row.reason, deadAtMs: row.deadAtMs };
}

/**
 * The values of STORED_COLUMNS for a delivery never attempted, in their order: due at once
 * (the first attempt is not delayed), with no attempts yet.
 */
export type StoredValues = [
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

export function storedColumns(
  d: NewDelivery,
  requestJson: string = JSON.stringify(d.request),
): StoredValues {
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
