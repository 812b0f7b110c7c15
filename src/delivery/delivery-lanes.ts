/**
 * Lanes: one queue of deliveries per target (or per order key), so that a slow, paced or
 * paused target never holds up another. The delivery engine puts deliveries into lanes and
 * asks {@link DeliveryLanes.take} for the next one to start; lanes take turns (round robin),
 * each within its own limits: attempts in flight, a gate (rate limit, circuit breaker) that
 * may say "not before", and a block (an ordered lane waiting for its head's retry).
 *
 * Everything here is memory and synchronous; what is durable lives in the delivery store.
 */

/** The limits of one lane, fixed when the lane is made. */
export interface LaneLimits {
  /** Attempts of this lane in flight at once. */
  maxInFlight: number;
  /**
   * Deliveries queued in memory beyond which the engine refuses to queue more in this lane
   * (they stay in the store, due, and are loaded when the lane has room).
   */
  maxQueued: number;
  /** An ordered lane keeps recorded order: one attempt at a time, a retry holds the rest. */
  ordered: boolean;
}

/**
 * Asks whether a lane may start an attempt now: 0 for yes, else how many ms to wait (a rate
 * limit's next token, an open circuit's probe time). Called only when the lane has work and
 * room; a yes is taken as a start (a token spent, a probe begun).
 */
export type LaneGate = (laneKey: string, nowMs: number) => number;

/** One lane's state. */
export interface Lane<T> {
  readonly key: string;
  readonly limits: LaneLimits;
  readonly queue: Fifo<T>;
  inFlight: number;
  /** Not before this time (an ordered lane's head waiting for its retry). */
  blockedUntilMs: number;
  /** In the ready ring (avoids duplicates). */
  ready: boolean;
  /** When a gate said to wait: the time to look again. */
  waitUntilMs: number;
}

/** A queue with O(1) push, shift and unshift. */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Puts an item back in front (an ordered lane's head after a failed attempt). */
  unshift(item: T): void {
    if (this.head > 0) this.items[--this.head] = item;
    else this.items.unshift(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Compact once the dead front is both large and most of the array.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /**
   * Puts `item` before the first queued item that `before(item, queued)` says it precedes,
   * looking from the back (where it usually belongs), else at the back.
   */
  insertOrdered(item: T, before: (item: T, queued: T) => boolean): void {
    let index = this.items.length;
    while (index > this.head && before(item, this.items[index - 1] as T)) index--;
    this.items.splice(index, 0, item);
  }

  /** Removes the queued items `matches` picks, keeping the others in order; returns them. */
  removeWhere(matches: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const kept: T[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i] as T;
      (matches(item) ? removed : kept).push(item);
    }
    if (removed.length > 0) {
      this.items = kept;
      this.head = 0;
    }
    return removed;
  }

  /** Removes and returns every queued item. */
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}

/** The lanes of one engine. */
export class DeliveryLanes<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  /** Lanes that have work and may have room, in turn order. */
  private readonly readyRing = new Fifo<Lane<T>>();
  /** Lanes told to wait (gate or block), looked at again when their time comes. */
  private readonly waiting = new Set<Lane<T>>();
  private queuedTotal = 0;

  constructor(private readonly gate: LaneGate = () => 0) {}

  /** Deliveries queued in memory, across lanes (not those in flight). */
  get queued(): number {
    return this.queuedTotal;
  }

  /** The lane of `key`, made with `limits()` on first use. */
  lane(key: string, limits: () => LaneLimits): Lane<T> {
    let lane = this.lanes.get(key);
    if (lane === undefined) {
      lane = {
        key,
        limits: limits(),
        queue: new Fifo<T>(),
        inFlight: 0,
        blockedUntilMs: 0,
        ready: false,
        waitUntilMs: 0,
      };
      this.lanes.set(key, lane);
    }
    return lane;
  }

  /** Whether `lane` is full: the engine should leave further deliveries in the store. */
  isFull(lane: Lane<T>): boolean {
    return lane.queue.length >= lane.limits.maxQueued;
  }

  /** Queues `item` at the back of `lane` (or the front, for an ordered lane's retried head). */
  add(lane: Lane<T>, item: T, front = false): void {
    if (front) lane.queue.unshift(item);
    else lane.queue.push(item);
    this.queuedTotal++;
    this.markReady(lane);
  }

  /** Queues `item` in `lane` in the order `before` defines (an ordered lane loaded from the store). */
  addInOrder(lane: Lane<T>, item: T, before: (item: T, queued: T) => boolean): void {
    lane.queue.insertOrdered(item, before);
    this.queuedTotal++;
    this.markReady(lane);
  }

  /** Holds `lane` back until `untilMs` (an ordered lane's head is to be retried then). */
  block(lane: Lane<T>, untilMs: number): void {
    lane.blockedUntilMs = untilMs;
    this.markReady(lane);
  }

  /**
   * Asks the gate about `lane` again at the next {@link DeliveryLanes.take}, even if it said
   * to wait: what made it wait may have changed (a circuit's probe ended).
   */
  recheck(lane: Lane<T>): void {
    if (!this.waiting.delete(lane)) return;
    this.markReady(lane);
  }

  /** An attempt of `lane` ended: it has room again. */
  finished(lane: Lane<T>): void {
    lane.inFlight--;
    if (lane.inFlight === 0 && lane.queue.length === 0 && !this.waiting.has(lane)) {
      // Idle: forget it, so lanes of finished replays do not pile up. Its gate keeps its
      // own state by key.
      if (this.lanes.get(lane.key) === lane) this.lanes.delete(lane.key);
      return;
    }
    this.markReady(lane);
  }

  /**
   * The next delivery to start at `nowMs`, taking turns between lanes; undefined when no
   * lane may start one now. The lane's in-flight count is raised: call
   * {@link DeliveryLanes.finished} when the attempt ends.
   */
  take(nowMs: number): { lane: Lane<T>; item: T } | undefined {
    this.wakeWaiting(nowMs);
    let budget = this.readyRing.length;
    while (budget-- > 0) {
      const lane = this.readyRing.shift()!;
      lane.ready = false;
      if (lane.queue.length === 0) continue;
      const room = lane.limits.ordered ? 1 : lane.limits.maxInFlight;
      if (lane.inFlight >= room) continue; // finished() puts it back
      if (lane.blockedUntilMs > nowMs) {
        this.wait(lane, lane.blockedUntilMs);
        continue;
      }
      const waitMs = this.gate(lane.key, nowMs);
      if (waitMs > 0) {
        this.wait(lane, nowMs + waitMs);
        continue;
      }
      const item = lane.queue.shift()!;
      this.queuedTotal--;
      lane.inFlight++;
      this.markReady(lane);
      return { lane, item };
    }
    return undefined;
  }

  /** The earliest time a waiting lane may start again; undefined when none waits. */
  nextWakeAtMs(): number | undefined {
    let earliest: number | undefined;
    for (const lane of this.waiting) {
      if (earliest === undefined || lane.waitUntilMs < earliest) earliest = lane.waitUntilMs;
    }
    return earliest;
  }

  /** Takes the queued items `matches` picks out of every lane (not those in flight); returns them. */
  remove(matches: (item: T) => boolean): T[] {
    const removed: T[] = [];
    for (const lane of this.lanes.values()) {
      if (lane.queue.length === 0) continue;
      const taken = lane.queue.removeWhere(matches);
      this.queuedTotal -= taken.length;
      removed.push(...taken);
    }
    return removed;
  }

  /** Empties every lane (the engine is closing); returns what was queued. */
  drain(): T[] {
    const out: T[] = [];
    for (const lane of this.lanes.values()) out.push(...lane.queue.drain());
    this.queuedTotal = 0;
    this.waiting.clear();
    return out;
  }

  private markReady(lane: Lane<T>): void {
    if (lane.ready || this.waiting.has(lane) || lane.queue.length === 0) return;
    lane.ready = true;
    this.readyRing.push(lane);
  }

  private wait(lane: Lane<T>, untilMs: number): void {
    lane.waitUntilMs = untilMs;
    this.waiting.add(lane);
  }

  private wakeWaiting(nowMs: number): void {
    if (this.waiting.size === 0) return;
    for (const lane of this.waiting) {
      if (lane.waitUntilMs > nowMs) continue;
      this.waiting.delete(lane);
      this.markReady(lane);
    }
  }
}
