/**
 * Replays: the events of a time window, from an archive or from a bus's log, sent again to
 * a bus's rules, one rule, or one target. The replay runner (src/delivery/replay-runner.ts)
 * hands them to delivery; this store keeps each replay's definition and progress, and
 * commits each batch's progress in one transaction with the runner's own writes (its
 * deliveries, through `DeliveryStore.enqueue` on the same state file).
 */

/**
 * `running`: events are being handed to delivery. `completed`: every event of the window
 * was (its deliveries may still be pending). `cancelled`: stopped by a client. `failed`:
 * stopped by a problem it cannot get past (`error` says which).
 */
export const REPLAY_STATES = ["running", "completed", "cancelled", "failed"] as const;
export type ReplayState = (typeof REPLAY_STATES)[number];

/** Where a replay reads: an archive, or the log of a bus. */
export type ReplaySource = { archive: string } | { bus: string };

/**
 * Where a replay sends: every rule of `bus`, only `rule` of it, or only target `targetId`
 * of that rule. Events still go through the rules' patterns.
 */
export interface ReplayDestination {
  bus: string;
  rule?: string;
  targetId?: string;
}

/** A replay as stored: what it replays, and how far it got. */
export interface StoredReplay {
  name: string;
  description?: string;
  source: ReplaySource;
  /** The archive's internal id, for an archive source. */
  archiveId?: number;
  /** The bus the events come from: the archive's bus, or the source bus. */
  bus: string;
  /** The window: events the log received from `fromMs` through `toMs`, ms since the epoch. */
  fromMs: number;
  toMs: number;
  /**
   * The last offset of the window, fixed when the replay started: the log's end then, or
   * the last offset received by `toMs` if earlier. Later events are not replayed.
   */
  endOffset: number;
  destination: ReplayDestination;
  state: ReplayState;
  /** Events in the window (when it started; once completed, the events replayed). */
  total: number;
  /** Events of the window handed to delivery so far. */
  replayed: number;
  /** Deliveries recorded so far (an event may go to several targets, or to none). */
  deliveries: number;
  /** The offset handed over last; the replay resumes after it. */
  lastOffset: number;
  startedAtMs: number;
  /** When it completed, was cancelled or failed. */
  endedAtMs?: number;
  /** Why it failed. */
  error?: string;
}

/** One batch of a replay's progress, committed with its deliveries. */
export interface ReplayBatch {
  /** The offset handed over through (the replay resumes after it). */
  throughOffset: number;
  /** Events of the window this batch handed over. */
  replayedEvents: number;
  /** Deliveries the batch records. */
  deliveries: number;
  /** Set on the last batch: the replay is then `completed`, ended at this time. */
  completedAtMs?: number;
}

/** Replays and their progress, in the state file. */
export interface ReplayStore {
  /** Inserts a new replay. Throws `ReplayAlreadyExists` when one has the name. */
  create(replay: StoredReplay): void;
  get(name: string): StoredReplay | undefined;
  /** The newest `limit` replays, newest first. */
  list(limit: number): StoredReplay[];
  /** The running replays (to resume after a restart), oldest first. */
  listRunning(): StoredReplay[];
  /**
   * Records the batch's progress and runs `within` in the same transaction: the caller's
   * writes to the state file (the batch's deliveries, through `DeliveryStore.enqueue`, which
   * nests). If `within` throws, nothing of the batch is stored. Returns false, running
   * nothing and storing nothing, when the replay is no longer running (cancelled meanwhile).
   */
  commitBatch(name: string, batch: ReplayBatch, within: () => void): boolean;
  /** Sets the total of a running replay (recounted once its archive has caught up). */
  setTotal(name: string, total: number): void;
  /** Running → cancelled at `nowMs`. Returns the replay as it now is; undefined when there is none. */
  cancel(name: string, nowMs: number): StoredReplay | undefined;
  /** Running → failed at `nowMs` with `error`. */
  fail(name: string, error: string, nowMs: number): void;
  /** The replay's deliveries still pending (not succeeded, not dead-lettered). */
  pendingDeliveries(name: string): number;
  /**
   * The lowest offset a running replay from the log of `bus` has handed over, or undefined
   * when none runs: log retention must not delete the rest of its window.
   */
  lowestPosition(bus: string): number | undefined;
}

/** The order key of a replay's deliveries to one target: they go one at a time, in log order. */
export function replayOrderKey(name: string, bus: string, rule: string, targetId: string): string {
  return `${replayOrderKeyPrefix(name)}${bus}/${rule}/${targetId}`;
}

/** What every order key of the replay starts with (`replay:<name>:`). */
export function replayOrderKeyPrefix(name: string): string {
  return `replay:${name}:`;
}
