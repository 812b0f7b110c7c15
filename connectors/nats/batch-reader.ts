/**
 * Cuts a stream of messages into batches the way a source hands them over: wait as long as
 * it takes for a first message, then at most `waitMs` more for others, up to `maxItems`.
 * Messages taken from the stream but not returned in a batch (the reader was stopped half
 * way through one) are kept, so the caller can give them back to the broker.
 */

/** Reads batches off an async iterator; see the module comment. */
export interface BatchReader<T> {
  /**
   * The next batch, or undefined when `stop` aborted (even half way through a batch) or the
   * iterator ended. Rejects when the iterator throws.
   */
  nextBatch(maxItems: number, waitMs: number, stop: AbortSignal): Promise<T[] | undefined>;
  /**
   * After the iterator was told to end: every message it still yields, with those taken but
   * not returned in a batch first (in the order received). Never rejects.
   */
  drain(): Promise<T[]>;
}

const TIMED_OUT = Symbol("timed out");
const STOPPED = Symbol("stopped");

export function createBatchReader<T>(iterator: AsyncIterator<T>): BatchReader<T> {
  /** A `next()` still in flight from a wait that gave up; reused, never called twice. */
  let pending: Promise<IteratorResult<T>> | undefined;
  let ended = false;
  const unreturned: T[] = [];

  async function next(stop: AbortSignal, window: Promise<typeof TIMED_OUT> | undefined) {
    pending ??= iterator.next();
    let onAbort = () => {};
    const stopped = new Promise<typeof STOPPED>((resolve) => {
      onAbort = () => resolve(STOPPED);
      if (stop.aborted) onAbort();
      else stop.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const result = await Promise.race(
        window === undefined ? [pending, stopped] : [pending, stopped, window],
      );
      if (result !== STOPPED && result !== TIMED_OUT) {
        pending = undefined;
        if (result.done === true) ended = true;
      }
      return result;
    } finally {
      stop.removeEventListener("abort", onAbort);
    }
  }

  return {
    async nextBatch(maxItems, waitMs, stop) {
      if (ended) return undefined;
      const batch: T[] = [];
      let timer: NodeJS.Timeout | undefined;
      let window: Promise<typeof TIMED_OUT> | undefined;
      try {
        while (batch.length < maxItems) {
          const result = await next(stop, window);
          if (result === TIMED_OUT) break;
          if (result === STOPPED || result.done === true) {
            unreturned.push(...batch);
            return undefined;
          }
          batch.push(result.value);
          window ??= new Promise(
            (resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), waitMs)),
          );
        }
        return batch;
      } catch (error) {
        unreturned.push(...batch);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    async drain() {
      const drained = unreturned.splice(0);
      try {
        while (!ended) {
          const result = await (pending ?? iterator.next());
          pending = undefined;
          if (result.done === true) ended = true;
          else drained.push(result.value);
        }
      } catch {
        // The iterator failed: what it held is lost to us and comes back after the ack wait.
        ended = true;
      }
      return drained;
    },
  };
}
