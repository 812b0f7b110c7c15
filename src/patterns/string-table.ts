/**
 * `StringTable`: the exact string ways of one large group of the laid-out pattern machine
 * (`machine-layout.ts`), a string → state id table in typed arrays.
 *
 * A JavaScript `Map` lookup that misses the CPU caches reads its bucket, then its entry, then
 * the key string, each a cache line of its own somewhere in memory; with 100,000 rules most
 * of a bus's lookups are such misses. Here a slot is four integers: the key's hash, the state
 * it leads to, and where the key's UTF-16 code units sit in one `Uint16Array`. A lookup reads
 * one slot line, compares hashes there, and reads the key's code units (one more line) only
 * when the hashes agree, nearly always for the key it looks for. A {@link KeyFilter} is asked
 * first, from a few kilobytes that stay in cache, since most lookups in a large index find
 * nothing.
 *
 * Hashes are `key-filter.ts`'s FNV-1a, so the walk hashes a value once for both.
 *
 * A key's code units may also sit elsewhere: in the laid-out machine, right before the record
 * of the state the key leads to ({@link HostedKeys}). A lookup that finds its key then goes on
 * to that record, so the line that holds the key is the one the walk reads next anyway, and a
 * hit costs one line less (with 100,000 rules, a line no cache holds).
 *
 * @module
 */

import { filterFor, hashText, type KeyFilter } from "./key-filter.js";

/** Slots per key at most: below half full, a probe rarely reads a second slot. */
const SLOTS_PER_KEY = 2;
/** What a lookup that finds nothing returns; no state id is -1 (see `TERMINAL_ONLY`). */
export const NOT_FOUND = -1;
const EMPTY = NOT_FOUND;
/**
 * Per slot: hash, next state, where the key's code units are, their count. The place is an
 * offset in the table's own `units` when it is 0 or more, and `-1 - offset` in the hosted
 * units ({@link HostedKeys}) when below 0.
 */
const SLOT_SIZE = 4;

/** Code units of keys kept outside the table, and where each key's are. */
export interface HostedKeys {
  /** Where they sit (the laid-out machine's code, read as 16-bit units). */
  readonly units: Uint16Array;
  /** The offset in `units` of `key`'s code units when the key leading to `next` is kept there, else -1. */
  offsetOf(key: string, next: number): number;
}

const NO_HOSTED_UNITS = new Uint16Array(0);

export class StringTable {
  private readonly slots: Int32Array;
  /** The code units of every key not hosted elsewhere, one after the other. */
  private readonly units: Uint16Array;
  /** Where hosted keys' code units are. */
  private readonly hostedUnits: Uint16Array;
  private readonly mask: number;
  /** 32 minus the capacity's bits: a hash's top bits pick its home slot. */
  private readonly shift: number;
  /** Asked before the slots when the table is large. */
  private readonly filter: KeyFilter | undefined;

  /**
   * A table of `ways` (key → state id), keys hashed forwards, or from their last code unit
   * backwards for a table of suffixes. Keys `hosted` keeps are read from there.
   */
  constructor(ways: ReadonlyMap<string, number>, backwards = false, hosted?: HostedKeys) {
    let capacity = 8;
    while (capacity < ways.size * SLOTS_PER_KEY) capacity *= 2;
    this.mask = capacity - 1;
    this.shift = Math.clz32(capacity) + 1;
    this.slots = new Int32Array(capacity * SLOT_SIZE).fill(EMPTY);
    const hostedAt = new Map<string, number>();
    let unitCount = 0;
    for (const [key, next] of ways) {
      const at = hosted === undefined ? -1 : hosted.offsetOf(key, next);
      if (at >= 0) hostedAt.set(key, at);
      else unitCount += key.length;
    }
    this.units = new Uint16Array(unitCount);
    this.hostedUnits = hosted?.units ?? NO_HOSTED_UNITS;
    this.filter = filterFor(ways, backwards);
    let offset = 0;
    for (const [key, next] of ways) {
      const hash = hashText(key, backwards);
      let slot = this.home(hash);
      while (this.slots[SLOT_SIZE * slot + 1] !== EMPTY) slot = (slot + 1) & this.mask;
      const at = SLOT_SIZE * slot;
      this.slots[at] = hash;
      this.slots[at + 1] = next;
      this.slots[at + 3] = key.length;
      const hostedOffset = hostedAt.get(key);
      if (hostedOffset !== undefined) {
        this.slots[at + 2] = -1 - hostedOffset;
        continue;
      }
      this.slots[at + 2] = offset;
      for (let i = 0; i < key.length; i++) this.units[offset++] = key.charCodeAt(i);
    }
  }

  /** The state `value` (whose {@link hashText} is `hash`) leads to, or -1. */
  get(value: string, hash: number): number {
    return this.getAffix(value, value.length, hash, true);
  }

  /**
   * The state the key equal to `value`'s first (`prefix`) or last `size` code units leads to,
   * or -1; `hash` is theirs, hashed forwards or backwards as the table's keys are. Cuts no
   * string out of `value`.
   */
  getAffix(value: string, size: number, hash: number, prefix: boolean): number {
    if (this.filter !== undefined && !this.filter.mayHold(hash)) return EMPTY;
    const slots = this.slots;
    const from = prefix ? 0 : value.length - size;
    for (let slot = this.home(hash); ; slot = (slot + 1) & this.mask) {
      const at = SLOT_SIZE * slot;
      const next = slots[at + 1]!;
      if (next === EMPTY) return EMPTY;
      if (slots[at] === hash && slots[at + 3] === size && this.unitsEqual(value, from, slots[at + 2]!, size)) return next;
    }
  }

  /**
   * The state `value` lower-cased leads to, or -1, for a table of lower-cased keys; `hash` is
   * that of the lower-cased value. The value is lower-cased only when a key's hash agrees and
   * it is not ASCII (where lower-casing maps A-Z alone, compared unit by unit).
   */
  getLowerCased(value: string, hash: number): number {
    if (this.filter !== undefined && !this.filter.mayHold(hash)) return EMPTY;
    const slots = this.slots;
    for (let slot = this.home(hash); ; slot = (slot + 1) & this.mask) {
      const at = SLOT_SIZE * slot;
      const next = slots[at + 1]!;
      if (next === EMPTY) return EMPTY;
      if (slots[at] === hash && this.lowerCasedEqual(value, slots[at + 2]!, slots[at + 3]!)) return next;
    }
  }

  /** Whether `value`'s `size` code units from `from` are the key's at `place` (a slot's, see {@link SLOT_SIZE}). */
  private unitsEqual(value: string, from: number, place: number, size: number): boolean {
    const units = place >= 0 ? this.units : this.hostedUnits;
    const offset = place >= 0 ? place : -1 - place;
    for (let i = 0; i < size; i++) if (value.charCodeAt(from + i) !== units[offset + i]) return false;
    return true;
  }

  private lowerCasedEqual(value: string, place: number, size: number): boolean {
    const units = place >= 0 ? this.units : this.hostedUnits;
    const offset = place >= 0 ? place : -1 - place;
    if (value.length === size) {
      let i = 0;
      for (; i < size; i++) {
        const unit = value.charCodeAt(i);
        if (unit >= 0x80) break;
        if ((unit >= 0x41 && unit <= 0x5a ? unit + 0x20 : unit) !== units[offset + i]) return false;
      }
      if (i === size) return true;
    }
    // Not ASCII: lower-casing may change the length, so lower-case it whole.
    const lower = value.toLowerCase();
    return lower.length === size && this.unitsEqual(lower, 0, place, size);
  }

  /** The slot a hash starts probing at (Fibonacci hashing: the top bits of hash × 2^32/φ). */
  private home(hash: number): number {
    return Math.imul(hash, 0x9e3779b1) >>> this.shift;
  }
}
