/**
 * Group commit: callers submit work and get a promise; everything submitted in one turn of
 * the event loop is committed together by one synchronous `commit` call, so concurrent
 * requests share one transaction and one fsync. The trade-off is latency: a caller waits
 * for the end of the current turn (no timer window), which costs nothing when idle and
 * batches naturally under load, because while one commit runs, the next turn's callers queue.
 */

/** How a {@link GroupCommitter} commits. */
export interface GroupCommitOptions<T, R> {
  /**
   * Most items in one commit. Calls are never split: a batch takes whole calls while they fit,
   * and a single call larger than this commits alone.
   */
  maxItems: number;
  /**
   * Commits the calls of one batch atomically and returns each call's results, in order.
   * Throwing rejects every call of the batch with what was thrown.
   */
  commit(calls: readonly (readonly T[])[]): R[][];
}

/** A queue that commits what was submitted in one event-loop turn in one batch. */
export interface GroupCommitter<T, R> {
  /** Queues `items` as one call; resolves with their results once committed. */
  submit(items: readonly T[]): Promise<R[]>;
  /** Commits everything queued now, synchronously (used by close). */
  drain(): void;
  /** Calls waiting for a commit. */
  readonly pendingCalls: number;
}

interface PendingCall<T, R> {
  items: readonly T[];
  resolve: (results: R[]) => void;
  reject: (error: unknown) => void;
}

/** Creates a group committer; it holds no resources beyond its queue. */
export function createGroupCommitter<T, R>(
  options: GroupCommitOptions<T, R>,
): GroupCommitter<T, R> {
  const maxItems = Math.max(1, Math.floor(options.maxItems));
  let queue: PendingCall<T, R>[] = [];
  let scheduled: NodeJS.Immediate | undefined;

  const schedule = () => {
    // setImmediate runs after the I/O callbacks of this turn, so every request whose body
    // arrived in this turn is queued before the commit starts.
    scheduled ??= setImmediate(flushOne);
  };

  /** Takes the longest prefix of whole calls that fits in `maxItems` (at least one call). */
  const takeBatch = (): PendingCall<T, R>[] => {
    let items = 0;
    let count = 0;
    for (const call of queue) {
      if (count > 0 && items + call.items.length > maxItems) break;
      items += call.items.length;
      count += 1;
    }
    const batch = queue.slice(0, count);
    queue = queue.slice(count);
    return batch;
  };

  const commitBatch = (batch: PendingCall<T, R>[]) => {
    let results: R[][];
    try {
      results = options.commit(batch.map((call) => call.items));
    } catch (error) {
      for (const call of batch) call.reject(error);
      return;
    }
    batch.forEach((call, index) => call.resolve(results[index] ?? []));
  };

  function flushOne() {
    scheduled = undefined;
    if (queue.length === 0) return;
    commitBatch(takeBatch());
    // One batch per turn: a backlog larger than maxItems is committed over several turns,
    // so reads and other writers get the connection between batches.
    if (queue.length > 0) schedule();
  }

  return {
    submit(items) {
      return new Promise<R[]>((resolve, reject) => {
        queue.push({ items, resolve, reject });
        schedule();
      });
    },
    drain() {
      if (scheduled !== undefined) clearImmediate(scheduled);
      scheduled = undefined;
      while (queue.length > 0) commitBatch(takeBatch());
    },
    get pendingCalls() {
      return queue.length;
    },
  };
}
