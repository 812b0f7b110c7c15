/**
 * Group commit, as the log writer thread does it: calls queue as they arrive, and each turn
 * of the event loop commits the calls queued so far in one batch, so concurrent requests
 * share one transaction and one fsync. There is no timer window: while one commit runs, the
 * next calls queue, so batches grow with load and cost nothing when idle.
 */

/** How a {@link GroupCommitter} commits. */
export interface GroupCommitOptions<C> {
  /**
   * Most items in one batch. Calls are never split: a batch takes whole calls while they fit,
   * and a single call larger than this commits alone.
   */
  maxItems: number;
  /** How many items `call` holds. */
  sizeOf(call: C): number;
  /**
   * Commits one batch and answers its callers, success or failure: it must not throw (what
   * it throws is lost in a `setImmediate` callback).
   */
  commit(batch: C[]): void;
}

/** A queue that commits what arrived by the end of each event-loop turn, in order. */
export interface GroupCommitter<C> {
  /** Queues `call` for the next batch. */
  submit(call: C): void;
  /** Commits everything queued now, synchronously, batch after batch (used by close). */
  drain(): void;
  /** Calls waiting for a commit. */
  readonly pendingCalls: number;
}

/** Creates a group committer; it holds no resources beyond its queue and one immediate. */
export function createGroupCommitter<C>(options: GroupCommitOptions<C>): GroupCommitter<C> {
  const maxItems = Math.max(1, Math.floor(options.maxItems));
  let queue: C[] = [];
  let scheduled: NodeJS.Immediate | undefined;

  const schedule = () => {
    // setImmediate runs after the I/O callbacks of this turn, so every message that arrived
    // in this turn is queued before the commit starts.
    scheduled ??= setImmediate(flushOne);
  };

  /** Takes the longest prefix of whole calls that fits in `maxItems` (at least one call). */
  const takeBatch = (): C[] => {
    let items = 0;
    let count = 0;
    for (const call of queue) {
      const size = options.sizeOf(call);
      if (count > 0 && items + size > maxItems) break;
      items += size;
      count += 1;
    }
    const batch = queue.slice(0, count);
    queue = queue.slice(count);
    return batch;
  };

  function flushOne() {
    scheduled = undefined;
    if (queue.length === 0) return;
    options.commit(takeBatch());
    // One batch per turn: a backlog larger than maxItems is committed over several turns,
    // so a retention batch or a newly arrived call is not stuck behind all of it.
    if (queue.length > 0) schedule();
  }

  return {
    submit(call) {
      queue.push(call);
      schedule();
    },
    drain() {
      if (scheduled !== undefined) clearImmediate(scheduled);
      scheduled = undefined;
      while (queue.length > 0) options.commit(takeBatch());
    },
    get pendingCalls() {
      return queue.length;
    },
  };
}
