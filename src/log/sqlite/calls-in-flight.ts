/**
 * The calls handed to the log writer thread and not answered yet, by call id: a ring of
 * slots indexed by id, since ids are given out in increasing order and mostly answered in
 * that order.
 *
 * Why not a `Map`: under load a `Map` that gets one new key and loses one per request
 * rebuilds its hash table every few dozen calls, and V8 leaves each replaced table pointing
 * at its successor and at the entries it held. Once one table was promoted to the old
 * generation, every later table and every call in it (with its events' parsed data and JSON)
 * stays reachable from that dead table until the next full collection: the young-generation
 * GC copies them all, then promotes them, about 2 KB an event. A ring lets go of a call by
 * clearing its slot.
 *
 * @module
 */

/** See the module comment. */
export class CallsInFlight<T> {
  private slots: (T | undefined)[] = new Array<T | undefined>(64).fill(undefined);
  /** The lowest id that may still be held. */
  private first = 0;
  /** One past the highest id added. */
  private end = 0;
  private held = 0;

  /** Calls held. */
  get size(): number {
    return this.held;
  }

  /** Adds the call `id`; ids must be added in increasing order. */
  add(id: number, call: T): void {
    if (this.held === 0) {
      this.first = id;
    } else if (id < this.end) {
      throw new Error(`call ${id} added after call ${this.end - 1}`);
    }
    while (id - this.first >= this.slots.length) this.grow();
    this.slots[id % this.slots.length] = call;
    this.end = id + 1;
    this.held += 1;
  }

  /** Removes and returns the call `id`, or undefined when it is not held. */
  take(id: number): T | undefined {
    if (this.held === 0 || id < this.first || id >= this.end) return undefined;
    const slot = id % this.slots.length;
    const call = this.slots[slot];
    if (call === undefined) return undefined;
    this.slots[slot] = undefined;
    this.held -= 1;
    if (this.held === 0) {
      this.first = this.end;
    } else {
      while (this.slots[this.first % this.slots.length] === undefined) this.first += 1;
    }
    return call;
  }

  /** The calls held, oldest first. */
  values(): T[] {
    const held: T[] = [];
    for (let id = this.first; id < this.end; id++) {
      const call = this.slots[id % this.slots.length];
      if (call !== undefined) held.push(call);
    }
    return held;
  }

  /** Forgets every call. */
  clear(): void {
    this.slots.fill(undefined);
    this.held = 0;
    this.first = this.end;
  }

  /** Doubles the ring, keeping each held id at `id % capacity`. */
  private grow(): void {
    const slots = new Array<T | undefined>(this.slots.length * 2).fill(undefined);
    for (let id = this.first; id < this.end; id++) slots[id % slots.length] = this.slots[id % this.slots.length];
    this.slots = slots;
  }
}
