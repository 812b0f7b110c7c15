/**
 * `StringTable`: the exact string ways of one large group of the laid-out pattern machine
 * (`machine-layout.ts`), a string → state id table in a typed array.
 *
 * A JavaScript `Map` lookup that misses the CPU caches reads its bucket, then its entry, then
 * the key's characters, each a cache line of its own somewhere in memory; with 100,000 rules
 * most of a bus's lookups are such misses. Here a slot is one pair of integers, the key's hash
 * and the state it leads to, in one array probed linearly: a lookup reads one slot line,
 * compares hashes there, and reads a key's characters only when the hashes agree (nearly
 * always the key it looks for). A {@link KeyFilter} is asked first, from a few kilobytes that
 * stay in cache, since most lookups in a large index find nothing.
 *
 * Hashes are `key-filter.ts`'s FNV-1a, so the walk hashes a value once for both.
 *
 * @module
 */

import { filterFor, hashText, type KeyFilter } from "./key-filter.js";

/** Slots per key at most: below half full, a probe rarely reads a second slot. */
const SLOTS_PER_KEY = 2;
const EMPTY = -1;

export class StringTable {
  /** Per slot: the key's hash and its state (`EMPTY` when the slot is free). */
  private readonly slots: Int32Array;
  /** Per slot: its key. */
  private readonly keys: string[];
  private readonly mask: number;
  /** 32 minus the capacity's bits: a hash's top bits pick its home slot. */
  private readonly shift: number;
  /** Asked before the slots when the table is large. */
  private readonly filter: KeyFilter | undefined;

  /**
   * A table of `ways` (key → state id), keys hashed forwards, or from their last code unit
   * backwards for a table of suffixes.
   */
  constructor(ways: ReadonlyMap<string, number>, backwards = false) {
    let capacity = 8;
    while (capacity < ways.size * SLOTS_PER_KEY) capacity *= 2;
    this.mask = capacity - 1;
    this.shift = Math.clz32(capacity) + 1;
    this.slots = new Int32Array(capacity * 2).fill(EMPTY);
    this.keys = new Array<string>(capacity).fill("");
    this.filter = filterFor(ways, backwards);
    for (const [key, next] of ways) {
      const hash = hashText(key, backwards);
      let slot = this.home(hash);
      while (this.slots[2 * slot + 1] !== EMPTY) slot = (slot + 1) & this.mask;
      this.slots[2 * slot] = hash;
      this.slots[2 * slot + 1] = next;
      this.keys[slot] = key;
    }
  }

  /** The state `value` (whose {@link hashText} is `hash`) leads to, or -1. */
  get(value: string, hash: number): number {
    if (this.filter !== undefined && !this.filter.mayHold(hash)) return EMPTY;
    const slots = this.slots;
    for (let slot = this.home(hash); ; slot = (slot + 1) & this.mask) {
      const next = slots[2 * slot + 1]!;
      if (next === EMPTY) return EMPTY;
      if (slots[2 * slot] === hash && this.keys[slot] === value) return next;
    }
  }

  /**
   * The state the key equal to `value`'s first (`prefix`) or last `size` code units leads to,
   * or -1; `hash` is theirs, hashed forwards or backwards as the table's keys are. Cuts no
   * string out of `value`.
   */
  getAffix(value: string, size: number, hash: number, prefix: boolean): number {
    if (this.filter !== undefined && !this.filter.mayHold(hash)) return EMPTY;
    const slots = this.slots;
    for (let slot = this.home(hash); ; slot = (slot + 1) & this.mask) {
      const next = slots[2 * slot + 1]!;
      if (next === EMPTY) return EMPTY;
      if (slots[2 * slot] !== hash) continue;
      const key = this.keys[slot]!;
      if (key.length === size && (prefix ? value.startsWith(key) : value.endsWith(key))) return next;
    }
  }

  /**
   * The state `value` lower-cased leads to, or -1, for a table of lower-cased keys; `hash` is
   * that of the lower-cased value. The value is lower-cased only when a key's hash agrees.
   */
  getLowerCased(value: string, hash: number): number {
    if (this.filter !== undefined && !this.filter.mayHold(hash)) return EMPTY;
    const slots = this.slots;
    for (let slot = this.home(hash); ; slot = (slot + 1) & this.mask) {
      const next = slots[2 * slot + 1]!;
      if (next === EMPTY) return EMPTY;
      if (slots[2 * slot] === hash && this.keys[slot] === value.toLowerCase()) return next;
    }
  }

  /** The slot a hash starts probing at (Fibonacci hashing: the top bits of hash × 2^32/φ). */
  private home(hash: number): number {
    return Math.imul(hash, 0x9e3779b1) >>> this.shift;
  }
}
