/**
 * When a dispatch consumer counts as stuck after its server leader changed, decided from what
 * JetStream shows of it. Older servers (before 2.10.26/2.11, nats-io/nats-server #6387 and
 * #6469) can come out of a consumer leader change not knowing of messages the old leader handed
 * out: an ack for one is ignored, so the ack floor stops at it, and one handed out but never
 * received is never handed out again. Consumer info shows only the symptom: an ack floor that
 * stays put with claims outstanding and nothing handed out again. A live node legitimately
 * working on the event after the floor (a target retrying, its claim renewed) shows the same
 * symptom, so a suspect floor is only stuck once no live node says it holds that event.
 *
 * Only what the change can have touched is watched: events up to the stream's last sequence
 * when the change was seen (the old leader cannot have handed out any later one). Once the
 * floor reaches it the watch ends, whatever is still outstanding: under steady load
 * "nothing outstanding" may never come, and a repair then would hand out everything after a
 * floor some node is merely slow with, again and again.
 */

/** What one look at a consumer shows. */
export interface ConsumerLook {
  nowMs: number;
  /** The server leading the consumer. */
  leader: string | undefined;
  /** Ack floor: every event up to this stream sequence is acknowledged. */
  floor: number;
  /** Events handed out and not acknowledged yet (`num_ack_pending`). */
  unacknowledged: number;
  /**
   * The stream's last sequence now: needed only when the leader changed since the last look
   * ({@link leaderChanged}), as the bound of what the change can have touched.
   */
  streamLastSeq?: number;
}

/** A leader change the watch has not yet seen settled. */
export interface LeaderChange {
  /** When the latest change was seen. */
  seenAtMs: number;
  /** The floor before the first change: the bug can move the floor past claims it lost. */
  floorBefore: number;
  /** The stream's last sequence when a change was seen: the highest event it can have touched. */
  lastSeqAtChange: number;
}

/** What the watch keeps of one consumer between looks. */
export interface ConsumerWatch {
  leader: string | undefined;
  floor: number;
  /** Since when the floor has stayed put with claims outstanding. */
  floorSinceMs: number;
  change?: LeaderChange;
}

export type WatchVerdict =
  /** Nothing to do. */
  | { kind: "fine" }
  /**
   * The floor has stayed put long enough after a change: stuck unless a live node holds the
   * event after it ({@link floorHeld}); if none does, make the consumer again from `fromSeq`.
   */
  | { kind: "suspect"; heldSeq: number; fromSeq: number };

/** Whether `leader` differs from the one last seen: the caller then reads the stream's last sequence. */
export function leaderChanged(watch: ConsumerWatch | undefined, leader: string | undefined): boolean {
  return watch !== undefined && watch.leader !== leader;
}

/**
 * The watch after one more look, and what to do. A floor counts as stuck once, since the
 * latest leader change and since it last moved, `stuckMs` have passed with claims outstanding.
 */
export function lookAtConsumer(
  watch: ConsumerWatch | undefined,
  look: ConsumerLook,
  stuckMs: number,
): { watch: ConsumerWatch; verdict: WatchVerdict } {
  const { nowMs, leader, floor } = look;
  if (watch === undefined) return { watch: { leader, floor, floorSinceMs: nowMs }, verdict: { kind: "fine" } };
  let change = watch.change;
  if (leader !== watch.leader) {
    // Without the stream's last sequence nothing bounds the change: the whole stream is in question.
    const lastSeq = look.streamLastSeq ?? Number.MAX_SAFE_INTEGER;
    change = {
      seenAtMs: nowMs,
      floorBefore: change?.floorBefore ?? watch.floor,
      lastSeqAtChange: Math.max(change?.lastSeqAtChange ?? 0, lastSeq),
    };
  }
  const floorSinceMs = floor !== watch.floor || look.unacknowledged === 0 ? nowMs : watch.floorSinceMs;
  // Every event the change could have touched is acknowledged: nothing it left behind is left.
  if (change !== undefined && floor >= change.lastSeqAtChange) change = undefined;
  const next: ConsumerWatch = { leader, floor, floorSinceMs, ...(change === undefined ? {} : { change }) };
  if (change !== undefined && nowMs - change.seenAtMs >= stuckMs && nowMs - floorSinceMs >= stuckMs) {
    return { watch: next, verdict: { kind: "suspect", heldSeq: floor + 1, fromSeq: Math.min(floor, change.floorBefore) + 1 } };
  }
  return { watch: next, verdict: { kind: "fine" } };
}

/**
 * A live node holds the event after the floor: the floor is waiting on it, not stuck. The
 * stall is counted again from now, so if that node's ack does not move the floor (the new
 * leader never knew of the event) the consumer is repaired `stuckMs` later.
 */
export function floorHeld(watch: ConsumerWatch, nowMs: number): ConsumerWatch {
  return { ...watch, floorSinceMs: nowMs };
}

/**
 * The consumer was made again from `fromSeq`, led by `leader`: a consumer just made has no
 * change behind it, so the watch starts over (a later leader change of its own is seen as any).
 */
export function consumerRemade(fromSeq: number, leader: string | undefined, nowMs: number): ConsumerWatch {
  return { leader, floor: fromSeq - 1, floorSinceMs: nowMs };
}
