/**
 * `KeyFilter`: a compact bit set over the keys of one large index of the pattern machine (a
 * group's exact strings, its prefixes, suffixes or lower-cased values), asked before the index
 * itself. With 100,000 rules the machine's maps no longer fit in the CPU caches, and a lookup
 * that finds nothing still reads a few cache lines of a map far away in memory; the filter
 * answers most of those misses from a few kilobytes that stay in cache, and needs no string to
 * be cut out of the value first: prefixes and suffixes are hashed as the value is read.
 *
 * A key sets two bits of one 32-bit word (a blocked Bloom filter), 16 bits per key: about
 * 1.6% of misses still reach the index, and one word is read per question. The filter is
 * half as large as one bit per key at 32 bits per key would be (which let 3% through), and
 * its size is what decides whether it stays in cache: at 100,000 rules each root index's
 * filter is read about once per event, at a random word, and a smaller one is evicted less.
 * Hashes are FNV-1a over UTF-16 code units; suffixes are hashed from their last unit backwards.
 *
 * @module
 */

// As a signed 32-bit integer, like every hash `Math.imul` returns, so that hashes compare with `===`.
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const BITS_PER_KEY = 16;
/** Spreads a hash's bits: the word is picked by its upper bits, the two bits in it by its lowest ten. */
const MIX = 0x9e3779b1;

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

/** The two bits (of 32) a mixed hash sets in its word. */
function twoBits(mixed: number): number {
  return (1 << (mixed & 31)) | (1 << ((mixed >>> 5) & 31));
}

export class KeyFilter {
  private readonly bits: Int32Array;
  /** Words - 1 (a power of two). */
  private readonly mask: number;

  /** A filter holding `keys` (hashed by `hash`). */
  constructor(keys: Iterable<string>, count: number, hash: (key: string) => number) {
    let size = 1024;
    while (size < count * BITS_PER_KEY) size *= 2;
    this.bits = new Int32Array(size >>> 5);
    this.mask = (size >>> 5) - 1;
    for (const key of keys) {
      const mixed = Math.imul(hash(key), MIX);
      this.bits[(mixed >>> 10) & this.mask]! |= twoBits(mixed);
    }
  }

  /** False when no key has this hash: the index cannot hold the value. */
  mayHold(hash: number): boolean {
    const mixed = Math.imul(hash, MIX);
    const both = twoBits(mixed);
    return (this.bits[(mixed >>> 10) & this.mask]! & both) === both;
  }
}

/** A filter over `keys` hashed forwards, or undefined when there are too few to need one. */
export function filterFor(keys: ReadonlyMap<string, unknown>, backwards = false): KeyFilter | undefined {
  if (keys.size < FILTERED_INDEX_SIZE) return undefined;
  return new KeyFilter(keys.keys(), keys.size, (key) => hashText(key, backwards));
}
