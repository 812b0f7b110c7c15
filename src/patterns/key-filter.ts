/**
 * `KeyFilter`: a compact bit set over the keys of one large index of the pattern machine (a
 * group's exact strings, its prefixes, suffixes or lower-cased values), asked before the index
 * itself. With 100,000 rules the machine's maps no longer fit in the CPU caches, and a lookup
 * that finds nothing still reads a few cache lines of a map far away in memory; the filter
 * answers most of those misses from a few kilobytes that stay in cache, and needs no string to
 * be cut out of the value first: prefixes and suffixes are hashed as the value is read.
 *
 * One bit per hash (32 bits per key, so about 3% of misses still reach the index). Hashes are
 * FNV-1a over UTF-16 code units; suffixes are hashed from their last unit backwards.
 *
 * @module
 */

// As a signed 32-bit integer, like every hash `Math.imul` returns, so that hashes compare with `===`.
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const BITS_PER_KEY = 32;

/** Indexes with fewer keys than this go without a filter: their maps are small and stay in cache. */
export const FILTERED_INDEX_SIZE = 32;

/** The FNV-1a state before any code unit. */
export const HASH_START = FNV_OFFSET;

/** The hash state after one more code unit. */
export function hashStep(hash: number, codeUnit: number): number {
  return Math.imul(hash ^ codeUnit, FNV_PRIME);
}

/** Hash of `text` read forwards (`backwards`: from its last code unit to its first). */
export function hashText(text: string, backwards = false): number {
  let hash = FNV_OFFSET;
  if (backwards) for (let i = text.length - 1; i >= 0; i--) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  else for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  return hash;
}

export class KeyFilter {
  private readonly bits: Int32Array;
  private readonly mask: number;

  /** A filter holding `keys` (hashed by `hash`). */
  constructor(keys: Iterable<string>, count: number, hash: (key: string) => number) {
    let size = 1024;
    while (size < count * BITS_PER_KEY) size *= 2;
    this.bits = new Int32Array(size >>> 5);
    this.mask = size - 1;
    for (const key of keys) {
      const bit = this.fold(hash(key));
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  /** False when no key has this hash: the index cannot hold the value. */
  mayHold(hash: number): boolean {
    const bit = this.fold(hash);
    return (this.bits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  /** Mixes the hash's high bits into the low ones the mask keeps. */
  private fold(hash: number): number {
    return (hash ^ (hash >>> 16)) & this.mask;
  }
}

/** A filter over `keys` hashed forwards, or undefined when there are too few to need one. */
export function filterFor(keys: ReadonlyMap<string, unknown>, backwards = false): KeyFilter | undefined {
  if (keys.size < FILTERED_INDEX_SIZE) return undefined;
  return new KeyFilter(keys.keys(), keys.size, (key) => hashText(key, backwards));
}
