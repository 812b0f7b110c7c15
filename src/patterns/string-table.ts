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
 * A hosted key's slot may also carry a look-ahead: when the state it leads to can go no
 * further unless one field of the event holds one exact string (a rule's `source`, checked
 * after its most particular condition), the slot names that field and string, and a lookup
 * given a {@link LookAhead} that says the event has no such leaf finds nothing, without
 * reading the key or the record. At 100,000 rules most hits are such (a tenant's rules on
 * other sources), and each would cost a line no cache holds.
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
 * Per slot: hash, next state, place, the key's length. The place is the offset of the key's
 * code units in the table's own `units` when it is 0 or more. Below 0 the key is hosted
 * ({@link HostedKeys}): its units end where the record of the next state starts, at 16-bit
 * offset `2 × next`, and `-1 - place` is its look-ahead: 0 for none, else
 * `1 + field × LOOK_AHEAD_KEYS + string` ({@link LookAhead}).
 */
const SLOT_SIZE = 4;
/** String indexes a look-ahead can name; past these (or past {@link LOOK_AHEAD_FIELDS}), a slot has none. */
const LOOK_AHEAD_KEY_BITS = 16;
const LOOK_AHEAD_KEYS = 1 << LOOK_AHEAD_KEY_BITS;
const LOOK_AHEAD_FIELDS = 1 << 14;

/** Code units of keys kept outside the table, and where each key's are. */
export interface HostedKeys {
  /** Where they sit (the laid-out machine's code, read as 16-bit units). */
  readonly units: Uint16Array;
  /**
   * Whether the key leading to `next` has its code units in `units`, ending at offset
   * `2 × next` (where the record of state `next` starts).
   */
  hosts(key: string, next: number): boolean;
  /**
   * The exact string state `next` needs on one field before anything else, as the field's id
   * and the string's index, or undefined when it has no such sole condition.
   */
  lookAhead(next: number): { readonly field: number; readonly key: number } | undefined;
}

/** Asked by a lookup that found a hosted key with a look-ahead: may the walk go on? */
export interface LookAhead {
  /** False when the event has no leaf at field `field` equal to string `key`. */
  mayHold(field: number, key: number): boolean;
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
    const keptElsewhere = new Set<string>();
    let unitCount = 0;
    for (const [key, next] of ways) {
      if (hosted?.hosts(key, next) === true) keptElsewhere.add(key);
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
      if (hosted !== undefined && keptElsewhere.has(key)) {
        const ahead = hosted.lookAhead(next);
        const usable = ahead !== undefined && ahead.key < LOOK_AHEAD_KEYS && ahead.field < LOOK_AHEAD_FIELDS;
        this.slots[at + 2] = -1 - (usable ? 1 + ahead.field * LOOK_AHEAD_KEYS + ahead.key : 0);
        continue;
      }
      this.slots[at + 2] = offset;
      for (let i = 0; i < key.length; i++) this.units[offset++] = key.charCodeAt(i);
    }
  }

  /** The state `value` (whose {@link hashText} is `hash`) leads to, or -1. */
  get(value: string, hash: number, ahead?: LookAhead): number {
    return this.getAffix(value, value.length, hash, true, ahead);
  }

  /**
   * The state the key equal to `value`'s first (`prefix`) or last `size` code units leads to,
   * or -1; `hash` is theirs, hashed forwards or backwards as the table's keys are. Cuts no
   * string out of `value`.
   */
  getAffix(value: string, size: number, hash: number, prefix: boolean, ahead?: LookAhead): number {
    if (this.filter !== undefined && !this.filter.mayHold(hash)) return EMPTY;
    const slots = this.slots;
    const from = prefix ? 0 : value.length - size;
    for (let slot = this.home(hash); ; slot = (slot + 1) & this.mask) {
      const at = SLOT_SIZE * slot;
      const next = slots[at + 1]!;
      if (next === EMPTY) return EMPTY;
      if (slots[at] !== hash || slots[at + 3] !== size) continue;
      const place = slots[at + 2]!;
      if (place < -1 && ahead !== undefined && !this.aheadHolds(place, ahead)) return EMPTY;
      if (this.unitsEqual(value, from, place, size, next)) return next;
    }
  }

  /**
   * The state `value` lower-cased leads to, or -1, for a table of lower-cased keys; `hash` is
   * that of the lower-cased value. The value is lower-cased only when a key's hash agrees and
   * it is not ASCII (where lower-casing maps A-Z alone, compared unit by unit).
   */
  getLowerCased(value: string, hash: number, ahead?: LookAhead): number {
    if (this.filter !== undefined && !this.filter.mayHold(hash)) return EMPTY;
    const slots = this.slots;
    for (let slot = this.home(hash); ; slot = (slot + 1) & this.mask) {
      const at = SLOT_SIZE * slot;
      const next = slots[at + 1]!;
      if (next === EMPTY) return EMPTY;
      if (slots[at] !== hash) continue;
      const place = slots[at + 2]!;
      if (place < -1 && ahead !== undefined && !this.aheadHolds(place, ahead)) return EMPTY;
      if (this.lowerCasedEqual(value, place, slots[at + 3]!, next)) return next;
    }
  }

  /** Whether `ahead` lets the walk go on through a hosted slot whose look-ahead `place` holds. */
  private aheadHolds(place: number, ahead: LookAhead): boolean {
    const look = -2 - place;
    return ahead.mayHold(look >>> LOOK_AHEAD_KEY_BITS, look & (LOOK_AHEAD_KEYS - 1));
  }

  /** Whether `value`'s `size` code units from `from` are those of the key of a slot with `place` and `next` (see {@link SLOT_SIZE}). */
  private unitsEqual(value: string, from: number, place: number, size: number, next: number): boolean {
    const units = place >= 0 ? this.units : this.hostedUnits;
    const offset = place >= 0 ? place : 2 * next - size;
    for (let i = 0; i < size; i++) if (value.charCodeAt(from + i) !== units[offset + i]) return false;
    return true;
  }

  private lowerCasedEqual(value: string, place: number, size: number, next: number): boolean {
    const units = place >= 0 ? this.units : this.hostedUnits;
    const offset = place >= 0 ? place : 2 * next - size;
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
    return lower.length === size && this.unitsEqual(lower, 0, place, size, next);
  }

  /** The slot a hash starts probing at (Fibonacci hashing: the top bits of hash × 2^32/φ). */
  private home(hash: number): number {
    return Math.imul(hash, 0x9e3779b1) >>> this.shift;
  }
}
