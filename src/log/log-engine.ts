/**
 * The storage seam. Everything above it (ingest, dispatch, delivery, the API) works on
 * these interfaces; `sqlite/` is the embedded default, `jetstream/` the engine several nodes share.
 */
import type { EventToAppend, JsonObject, StoredEvent } from "../types.js";
import type { ApiKeyStore } from "./api-key-store.js";
import type { ArchiveStore } from "./archive-store.js";
import type { AuditStore } from "./audit-store.js";
import type { BillingStore } from "./billing-store.js";
import type { ReplayStore } from "./replay-store.js";
import type { ConnectionStore } from "./connection-store.js";
import type { TargetStateStore } from "./target-state-store.js";
import type { ScheduleStore } from "./schedule-store.js";
import type { Leadership } from "./leadership.js";
import type { SharedLogConsumer } from "./shared-log-consumer.js";
import type { StreamStore } from "./stream-store.js";
import type { UsageStore } from "./usage-store.js";

/** The append-only event log, ordered per bus by a gap-free offset starting at 1. */
export interface LogEngine {
  /**
   * Appends events durably. Appends from concurrent callers are group-committed: they share
   * one transaction. The promise resolves only after the commit (the ack point), with the
   * stored events in the order given. It rejects with a `RelaybusError` (`ServiceUnavailable`
   * when the disk is full or the database unavailable) and then nothing of the call is stored.
   */
  append(events: readonly EventToAppend[]): Promise<StoredEvent[]>;
  /** Events of `bus` with offset > `afterOffset`, oldest first, at most `limit`. */
  read(bus: string, afterOffset: number, limit: number): Promise<StoredEvent[]>;
  /** The last `limit` events of `bus`, oldest first. */
  readLast(bus: string, limit: number): Promise<StoredEvent[]>;
  /** The highest offset of `bus`, 0 when it has none. */
  lastOffset(bus: string): Promise<number>;
  /** Number of events of `bus` in the log (after retention). */
  count(bus: string): Promise<number>;
  /** The event with that CloudEvent id on that bus, if still in the log. */
  findById(bus: string, id: string): Promise<StoredEvent | undefined>;
  /**
   * The first offset of `bus` still in the log whose event was received at or after
   * `timeMs`, or undefined when there is none (where a replay's time window starts). Receive
   * times follow offsets (the log stamps each commit with the clock), so engines may search
   * by offset; after the clock stepped back the answer is the first such offset they find.
   */
  firstOffsetReceivedFrom(bus: string, timeMs: number): Promise<number | undefined>;
  /** Calls `listener(bus)` after each commit that added events to `bus`. Returns an unsubscribe. */
  onAppend(listener: (bus: string) => void): () => void;
  /**
   * Deletes events received before `cutoffMs` but never ones a consumer has not passed:
   * `keepFrom(bus)` gives the lowest offset that must stay (the dispatcher's checkpoint + 1).
   * Returns how many were deleted. Offsets are never reused, even once a bus's events are
   * all pruned.
   */
  pruneOlderThan(cutoffMs: number, keepFrom: (bus: string) => number): Promise<number>;
  /**
   * Work over this log shared with the other nodes of a cluster, under a name (`dispatch`):
   * present only on engines that several nodes share (JetStream). See `shared-log-consumer.ts`.
   */
  sharedConsumer?(name: string): SharedLogConsumer;
  /** Counters since open, for tests, benchmarks and metrics. */
  stats(): LogStats;
  /** Commits what is queued, then stops accepting appends (they reject `ServiceUnavailable`). */
  close(): Promise<void>;
}

/** Counters of a {@link LogEngine} since it was opened. */
export interface LogStats {
  /** Transactions that committed appended events (group commit: one per flush, not per call). */
  commits: number;
  /** Events those commits stored. */
  committedEvents: number;
  /** Append transactions that failed; every caller in them was rejected. */
  failedCommits: number;
}

/** A bus as stored in the catalog (buses created through the API). */
export interface StoredBus {
  name: string;
  description?: string;
  /** A system bus: its publishes are metered like any bus's and priced at 0. Absent: false. */
  system?: boolean;
  createdAtMs: number;
}

/** A rule created through the API, stored as its definition (JSON). */
export interface StoredRule {
  bus: string;
  name: string;
  definition: JsonObject;
  createdAtMs: number;
  updatedAtMs: number;
}

/** Buses and API-managed rules. Rule files are not stored here; they live on disk. */
export interface CatalogStore {
  listBuses(): StoredBus[];
  getBus(name: string): StoredBus | undefined;
  /** Inserts; throws `BusAlreadyExists` if present. */
  createBus(bus: StoredBus): void;
  /** Deletes the bus and its API rules; returns false if absent. */
  deleteBus(name: string): boolean;
  listRules(bus?: string): StoredRule[];
  getRule(bus: string, name: string): StoredRule | undefined;
  /** Inserts or replaces. */
  putRule(rule: StoredRule): void;
  deleteRule(bus: string, name: string): boolean;
}

/** What the dispatcher hands to delivery for one (event, target): built once, sent as is. */
export interface NewDelivery {
  /** The delivery id, a UUID; it is the `webhook-id` of every attempt. */
  id: string;
  bus: string;
  offset: number;
  eventId: string;
  rule: string;
  targetId: string;
  /** The request to send: the URL, headers and body (the formatted or transformed event). */
  request: DeliveryRequest;
  /** The retry policy in force for this delivery. */
  retry: RetryPolicy;
  /** When the event entered the log; max event age counts from here. */
  eventReceivedAtMs: number;
  createdAtMs: number;
  /**
   * Deliveries sharing an order key are attempted one at a time, in the order they were
   * recorded, and a retry holds back the ones after it (a replay to one target uses this so
   * that the receiver sees the log's order). Absent: no order is kept.
   */
  orderKey?: string;
  /**
   * The request's body is the event's stored structured JSON, as is (format
   * `cloudevents-structured`): a store may keep a reference to the event instead of a copy.
   */
  bodyIsEvent?: boolean;
}

export interface DeliveryRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

/** Retry policy of a target, resolved with defaults. */
export interface RetryPolicy {
  /** Attempts in all, the first included. AWS's default: 185. */
  maxAttempts: number;
  /** Give up once the event is older than this. AWS's default: 86,400 s (24 h). */
  maxAgeSeconds: number;
  /** Exponential backoff: first retry delay, growth factor, cap; full jitter is applied. */
  baseDelayMs: number;
  factor: number;
  maxDelayMs: number;
  /** Explicit delays before each retry instead of the exponential curve; the last one repeats. */
  delaysMs?: readonly number[];
  /**
   * Set on a delivery redriven from the dead letters: the attempts it had had and its age
   * in seconds when it was redriven, both already added to `maxAttempts` and
   * `maxAgeSeconds`. That gives it the whole budget again while its attempts list keeps
   * every earlier attempt (delivery numbers attempts on from the list's length). Absent on
   * deliveries never redriven.
   */
  spentBeforeRedrive?: { attempts: number; ageSeconds: number };
}

/** A pending or finished delivery, as the store holds it. */
export interface Delivery extends NewDelivery {
  attempts: AttemptRecord[];
  nextAttemptAtMs: number;
}

/** A delivery as a trace shows it: pending, or finished with success (kept for the trace retention). */
export interface TracedDelivery extends Delivery {
  /** When it succeeded; absent while pending. */
  finishedAtMs?: number;
  /**
   * Set when the store kept no copy of the body because it was the event's structured JSON
   * (`request.body` is then empty): read it from the log, while the log keeps the event.
   */
  bodyByReference?: true;
}

/** Every delivery one event produced: pending or succeeded, and dead letters. */
export interface EventDeliveries {
  deliveries: TracedDelivery[];
  deadLetters: DeadLetter[];
}

/** One attempt and how it ended. */
export interface AttemptRecord {
  attempt: number;
  startedAtMs: number;
  durationMs: number;
  /** HTTP status, absent for network errors and timeouts. */
  status?: number;
  outcome: "success" | "retryable" | "permanent";
  /** What went wrong, for anything but success. */
  error?: string;
}

/** What to do with a delivery after an attempt. */
export type DeliveryNext =
  | { kind: "succeeded" }
  | { kind: "retry"; nextAttemptAtMs: number }
  | { kind: "dead"; reason: string };

/** One finished attempt to record, with what follows it. */
export interface AttemptToRecord {
  deliveryId: string;
  attempt: AttemptRecord;
  next: DeliveryNext;
}

/**
 * A delivery as the dispatcher commits it after the delivery engine had a first go at it
 * (see `commitDispatched`): its first attempt, when that ended before the commit, or the
 * time until which the engine holds it in memory (queued or in flight).
 */
export interface DispatchedDelivery {
  delivery: NewDelivery;
  /** The first attempt, when it ended before the commit, and what follows it. */
  first?: { attempt: AttemptRecord; next: DeliveryNext };
  /**
   * Without `first`: the engine holds the delivery (queued or in flight) and records its
   * attempt itself later; it is stored leased until this time, so it is not handed out
   * again meanwhile, and is due again after it if the process died. Absent too: stored due
   * at once.
   */
  heldUntilMs?: number;
  /** Not sent (its target is disabled): stored straight as a dead letter with this reason. */
  deadReason?: string;
}

/** A delivery that ended without success, with its payload and every attempt. */
export interface DeadLetter extends Delivery {
  reason: string;
  deadAtMs: number;
}

/**
 * Which dead letters a call concerns. Every field given must hold (AND); no field at all
 * selects every dead letter.
 */
export interface DeadLetterSelection {
  bus?: string;
  rule?: string;
  targetId?: string;
  /**
   * A substring of the reason, compared ignoring ASCII case: `HTTP 500`, `transform failed`,
   * `maxAttempts`, `permanent failure`. Reasons are sentences, not codes (see
   * `decideNext` and the dispatcher), so a substring is what can select them.
   */
  reason?: string;
  /** Dead-lettered at or after this time, ms since the epoch. */
  fromMs?: number;
  /** Dead-lettered at or before this time, ms since the epoch. */
  toMs?: number;
  /** Only these delivery ids. */
  ids?: readonly string[];
}

/** A {@link DeadLetterSelection} for listing: newest first, a page at a time. */
export interface DeadLetterFilter extends DeadLetterSelection {
  /** Page size; default 100, at most 1,000. */
  limit?: number;
  /** Return dead letters whose `deadAtMs` is before this (paging, newest first). */
  beforeMs?: number;
}

/**
 * What a redrive sends for one dead letter: a request and retry policy (its stored ones, or
 * ones rebuilt from the target's current definition), or why it stays a dead letter.
 */
export type RedrivePlan = { request: DeliveryRequest; retry: RetryPolicy } | { skip: string };

/** Options of {@link DeliveryStore.redriveDeadLetters}. */
export interface RedriveOptions {
  /**
   * Decides what to send for each selected dead letter; it may be async (reading the log,
   * evaluating a transform), since it runs before its batch's transaction. Default: the
   * stored request and retry policy, as they were.
   */
  prepare?: (letter: DeadLetter) => RedrivePlan | Promise<RedrivePlan>;
  /** Dead letters per transaction. Default 500. */
  batchSize?: number;
  /** How many skipped dead letters the result lists with their reason. Default 100. */
  maxSkipsListed?: number;
}

/** One dead letter a redrive left where it was, and why. */
export interface RedriveSkip {
  id: string;
  reason: string;
}

/** What {@link DeliveryStore.redriveDeadLetters} did. Selected = redriven + skipped. */
export interface RedriveResult {
  /** Dead letters moved back to the pending deliveries. */
  redriven: number;
  /** Dead letters left in place (each still a dead letter). */
  skipped: number;
  /** The first `maxSkipsListed` of them, with the reason. */
  skips: RedriveSkip[];
}

/**
 * Durable delivery state. The dispatcher's checkpoint and the deliveries an event produced
 * are written in one transaction, so the checkpoint never passes an event whose deliveries
 * are neither done nor durably pending.
 */
export interface DeliveryStore {
  /** The offset of `bus` the dispatcher has fully handed over (0 at first). */
  checkpoint(bus: string): number;
  /**
   * Records `deliveries` as pending (due at their `createdAtMs`) and moves the checkpoint of
   * `bus` to `throughOffset`, in one transaction. A delivery id already pending is skipped.
   * Throws `InternalError` if the checkpoint would move back, `ServiceUnavailable` if the
   * write fails (then nothing of it is stored).
   */
  commitDispatch(bus: string, throughOffset: number, deliveries: readonly NewDelivery[]): void;
  /**
   * {@link DeliveryStore.commitDispatch} for deliveries the engine tried first: each one is
   * stored as its first attempt left it (succeeded, to retry, or dead-lettered) or, when
   * that attempt has not ended, pending (leased until `heldUntilMs` when given), all with
   * the checkpoint in one transaction. The fast path: a delivery that succeeded at once
   * costs one row insert, with no lease and no second write.
   */
  commitDispatched(bus: string, throughOffset: number, dispatched: readonly DispatchedDelivery[]): void;
  /**
   * Pending deliveries due at `nowMs`, oldest due first, at most `limit`. A read: it leases
   * nothing, so it also shows deliveries in flight (due again when their lease ends).
   */
  due(nowMs: number, limit: number): Delivery[];
  /**
   * Takes the deliveries due at `nowMs` (oldest due first, at most `limit`) and leases them
   * in the same transaction: each one's `nextAttemptAtMs` becomes `nowMs` plus its
   * `request.timeoutMs` plus `leaseMarginMs`, so it is not due again while its attempt runs.
   * Recording the attempt ends the lease (the delivery is done, rescheduled or dead). If the
   * process dies first, the lease runs out and the delivery is due again: at least once.
   * The deliveries are returned with their lease expiry as `nextAttemptAtMs`.
   */
  leaseDue(nowMs: number, limit: number, leaseMarginMs: number): Delivery[];
  /** The earliest `nextAttemptAtMs` of any pending delivery (leases included), undefined when none. */
  nextDueAtMs(): number | undefined;
  /**
   * Appends each record's attempt and applies its `next` (done, rescheduled, or moved to
   * dead letters), all in one transaction: either every record is stored or none is
   * (`ServiceUnavailable`). Records of deliveries no longer pending are skipped; their ids
   * are returned.
   */
  recordAttempts(records: readonly AttemptToRecord[]): string[];
  /**
   * {@link DeliveryStore.recordAttempts} for one record. Throws `InternalError` when the
   * delivery is not pending (finished or dead already).
   */
  recordAttempt(deliveryId: string, attempt: AttemptRecord, next: DeliveryNext): void;
  /**
   * Records `deliveries` as pending, due at their `createdAtMs`, in one transaction, without
   * moving any checkpoint (replays and other producers that keep their own progress call it
   * inside their own transaction on the same file). A delivery id already stored is skipped.
   */
  enqueue(deliveries: readonly NewDelivery[]): void;
  /**
   * Takes those of `ids` that are pending, deleting them in one transaction, and returns
   * them with their attempts: a node of a cluster hands them to the cluster's queue of
   * parked deliveries. The caller makes sure no attempt runs for them (`DeliveryEngine.release`).
   */
  take(ids: readonly string[]): Delivery[];
  /**
   * Stores deliveries taken from elsewhere (a parked delivery, or ones `takeWaiting` gave and
   * that could not be parked) as pending, with their attempts and next attempt time. An id
   * already pending is skipped.
   */
  adopt(deliveries: readonly Delivery[]): void;
  /**
   * The deliveries of one event of `bus`: pending, succeeded (while the trace retention keeps
   * them) and dead letters, oldest first. For `GET /v1/events/{id}/trace`.
   */
  deliveriesOfEvent(bus: string, eventId: string): EventDeliveries;
  /**
   * Deletes succeeded deliveries finished before `cutoffMs` (trace retention), in batches of
   * 500, one transaction each, yielding to the event loop in between; returns how many.
   */
  pruneFinished(cutoffMs: number): Promise<number>;
  /** Moves a pending delivery straight to the dead letters (a failed transform, say). */
  deadLetter(delivery: NewDelivery, reason: string): void;
  pendingCount(): number;
  listDeadLetters(filter: DeadLetterFilter): DeadLetter[];
  getDeadLetter(id: string): DeadLetter | undefined;
  /**
   * Moves the selected dead letters back to the pending deliveries, due at once, keeping
   * each one's id (so its `webhook-id` is the one its receiver saw before and can dedupe on)
   * and its attempts list (new attempts are numbered on). Its retry policy is
   * `options.prepare`'s, or its stored one, with what it had spent added on (see
   * {@link RetryPolicy.spentBeforeRedrive}): a fresh budget of attempts and age.
   *
   * Works in batches of `batchSize`, one transaction each, yielding to the event loop in
   * between. Only dead letters dead by the time the call started are taken, so one that
   * fails again meanwhile is not redriven twice. A dead letter is skipped (left in place,
   * counted and reported) when `prepare` says so, or when a delivery with its id is
   * pending already. One purged meanwhile by another caller counts as neither.
   */
  redriveDeadLetters(selection: DeadLetterSelection, options?: RedriveOptions): Promise<RedriveResult>;
  /**
   * Deletes the selected dead letters dead by the time the call started, in batches of 500
   * (one transaction each, yielding in between). Returns how many were deleted.
   */
  purgeDeadLetters(selection: DeadLetterSelection): Promise<number>;
}

/**
 * The Standard Webhooks signature schemes: `hmac-sha256` (symmetric, a `whsec_` secret, `v1`
 * signatures) and `ed25519` (asymmetric, a `whsk_` private key whose `whpk_` public key the
 * receiver holds, `v1a` signatures).
 */
export const TARGET_SECRET_KINDS = ["hmac-sha256", "ed25519"] as const;
export type TargetSecretKind = (typeof TARGET_SECRET_KINDS)[number];

/** A signing secret as delivery needs it: its scheme and its serialised material. */
export interface SigningSecret {
  kind: TargetSecretKind;
  /** `whsec_<base64>` (hmac-sha256) or `whsk_<base64 seed>` (ed25519). Never shown after creation. */
  material: string;
}

/** A signing secret of one target, created through the API and kept in the state file. */
export interface StoredTargetSecret extends SigningSecret {
  bus: string;
  rule: string;
  targetId: string;
  /** Unique within the target. */
  id: string;
  /** ed25519 only: `whpk_<base64>`, what the receiver verifies with. */
  publicKey?: string;
  createdAtMs: number;
  /** From this time on the secret no longer signs; absent while it has no end. */
  expiresAtMs?: number;
}

/**
 * Signing secrets of targets (Standard Webhooks). The delivery engine asks for a target's
 * active secrets on every attempt, so reads come from memory: a target's rows are read once
 * and kept until this store itself changes them (the API and the engine share the process).
 */
export interface TargetSecretStore {
  /**
   * The target's secrets that have not expired at `nowMs`, oldest first. After the first
   * read of a target this is a memory lookup, and it returns the same objects until the
   * target's secrets change, so callers may cache work per object (a parsed key).
   */
  activeSecrets(bus: string, rule: string, targetId: string, nowMs: number): readonly StoredTargetSecret[];
  /** Every stored secret of the target, expired ones included, oldest first. */
  listSecrets(bus: string, rule: string, targetId: string): StoredTargetSecret[];
  /**
   * Stores `secret`, in one transaction with: every other secret of the target that would
   * outlive `expireOthersAtMs` now expiring then (when given), and secrets of the target that
   * had expired by `secret.createdAtMs` deleted. Throws `ServiceUnavailable` if the write fails.
   */
  addSecret(secret: StoredTargetSecret, options?: { expireOthersAtMs?: number }): void;
  /** Deletes one secret at once (revocation); false when the target has no such secret. */
  revokeSecret(bus: string, rule: string, targetId: string, id: string): boolean;
  /**
   * Deletes every secret of a rule's targets (or, without `rule`, of a bus's rules), so that a
   * rule deleted and created again under the same names does not sign with the old secrets.
   * Returns how many were deleted.
   */
  deleteSecretsOf(bus: string, rule?: string): number;
}

/**
 * Deliveries parked in the cluster. A node of a cluster holds an event claimed while the
 * event's deliveries run (see `shared-log-consumer.ts`); a delivery that keeps retrying for
 * long would hold its event, and with many such events the bus, so after a while the node
 * parks it: the delivery, with its attempts so far, goes to a queue the cluster keeps, and
 * the node lets the event go. When the delivery is due, any node claims it, attempts it, and
 * acknowledges it once it has ended (or parks it again). A node dying with a parked delivery
 * claimed loses nothing: the claim runs out and another node takes it.
 *
 * A parked delivery this node claimed:
 */
export interface ClaimedDelivery {
  delivery: Delivery;
  /** Done with it (ended, or parked again): it is never handed out again. */
  ack(): void;
  /** Still working on it: its claim time starts over. */
  extend(): void;
}

export interface ParkedDeliveries {
  /** How long a claim lasts without `extend` or `ack`, ms. */
  readonly claimMs: number;
  /** Parks deliveries; resolves once the cluster stored them (then the caller may drop its copies). */
  park(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Claims up to `max` parked deliveries that are due (their `nextAttemptAtMs` has come),
   * waiting up to `maxWaitMs`; those not due yet go back until they are.
   */
  claimDue(max: number, maxWaitMs: number): Promise<ClaimedDelivery[]>;
  /** Ends claims waiting for due deliveries now (closing); what they claimed goes back. */
  stop(): void;
}

/** All of the storage one Relaybus process uses. */
export interface Storage {
  log: LogEngine;
  catalog: CatalogStore;
  deliveries: DeliveryStore;
  /** Signing secrets of targets, created through the API. */
  targetSecrets: TargetSecretStore;
  /** Archives and their events. */
  archives: ArchiveStore;
  /** Replays and their progress. */
  replays: ReplayStore;
  /** Targets disabled and why, and since when they have been failing. */
  targetStates: TargetStateStore;
  /** Connections (authorization of targets' requests), created through the API. */
  connections: ConnectionStore;
  /** Usage counts per hour and day, and the meters' checkpoints. */
  usage: UsageStore;
  /** Billing periods and their priced records. */
  billing: BillingStore;
  /** API keys: who may call the HTTP API, and for what. */
  apiKeys: ApiKeyStore;
  /** Who changed what, when: the audit log. */
  audit: AuditStore;
  /** Event streams: API definitions, runtime, capacity history, dead letters. */
  streams: StreamStore;
  /** Schedules: the time of each one's last fire. */
  schedules: ScheduleStore;
  /**
   * Present when several nodes share the state: calls `listener` after changes made by any
   * node were applied here, with the kinds they touched (`bus`, `rule`, `connection`), so
   * that what is built from them (the rule registry) is rebuilt. Returns an unsubscribe.
   */
  onSharedStateChange?(listener: (kinds: ReadonlySet<string>) => void): () => void;
  /**
   * Present when several nodes share the storage: whether this node leads, so that work that
   * must not run twice (streams, schedules) runs on one node only. See `leadership.ts`.
   */
  leadership?: Leadership;
  /**
   * Present when several nodes share the storage: the cluster's queue of deliveries parked
   * while they retry, which any node takes back when due. See `parked-deliveries.ts`.
   */
  parkedDeliveries?: ParkedDeliveries;
  close(): Promise<void>;
}
