/**
 * Knowing when deliveries end. The shared dispatcher acknowledges an event to the cluster
 * only once every delivery it produced has ended (succeeded or dead-lettered), so that a node
 * dying with deliveries pending has the event handed to another node. The delivery engine
 * records every ending through its store; this wraps the store to hear of them.
 */
import type { DeliveryStore } from "../log/log-engine.js";

export interface DeliveryCompletion {
  /** The store to give the delivery engine: the same store, telling this tracker what ends. */
  readonly store: DeliveryStore;
  /**
   * Calls `onEnded` once each of `ids` has ended from now on (the caller passes ids of
   * deliveries still pending). Register right after committing them, in the same turn.
   */
  whenEnded(ids: readonly string[], onEnded: () => void): void;
  /**
   * Counts `ids` as ended without the store saying so: deliveries that went elsewhere
   * (parked in the cluster), which the waits that held them need no longer wait for.
   */
  settle(ids: readonly string[]): void;
  /** Deliveries waited for. */
  readonly waiting: number;
}

interface Waiter {
  remaining: number;
  onEnded: () => void;
}

export function createDeliveryCompletion(inner: DeliveryStore): DeliveryCompletion {
  const waiters = new Map<string, Waiter>();

  const ended = (id: string) => {
    const waiter = waiters.get(id);
    if (waiter === undefined) return;
    waiters.delete(id);
    waiter.remaining -= 1;
    if (waiter.remaining === 0) waiter.onEnded();
  };

  const store: DeliveryStore = {
    ...inner,
    recordAttempts(records) {
      const notPending = inner.recordAttempts(records);
      const skipped = new Set(notPending);
      for (const record of records) {
        if (record.next.kind !== "retry" && !skipped.has(record.deliveryId)) ended(record.deliveryId);
      }
      return notPending;
    },
    recordAttempt(deliveryId, attempt, next) {
      inner.recordAttempt(deliveryId, attempt, next);
      if (next.kind !== "retry") ended(deliveryId);
    },
    deadLetter(delivery, reason) {
      inner.deadLetter(delivery, reason);
      ended(delivery.id);
    },
  };

  return {
    store,
    whenEnded(ids, onEnded) {
      const unique = [...new Set(ids)];
      if (unique.length === 0) {
        onEnded();
        return;
      }
      const waiter: Waiter = { remaining: unique.length, onEnded };
      for (const id of unique) {
        // One id waited for twice (an event claimed again while its delivery was pending):
        // the earlier wait is dropped from this id's count, the later one owns it.
        const previous = waiters.get(id);
        if (previous !== undefined) {
          previous.remaining -= 1;
          if (previous.remaining === 0) previous.onEnded();
        }
        waiters.set(id, waiter);
      }
    },
    settle(ids) {
      for (const id of ids) ended(id);
    },
    get waiting() {
      return waiters.size;
    },
  };
}
