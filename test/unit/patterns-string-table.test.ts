// The pattern machine's string tables against a plain Map: exact values, prefixes, suffixes
// and lower-cased values, over random keys with non-ASCII code units (whose lower-casing can
// change a string's length) and tables on both sides of the filter size.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { HASH_START, hashStep, hashText } from "../../src/patterns/key-filter.js";
import { StringTable, type HostedKeys, type LookAhead } from "../../src/patterns/string-table.js";

const unit = fc.constantFrom("a", "b", "A", "B", "z", "-", "0", "ß", "İ", "Σ", "ς", "é", "É", "\u212a", "😀");
const text = fc.array(unit, { maxLength: 6 }).map((units) => units.join(""));
const keySets = fc.uniqueArray(text, { minLength: 1, maxLength: 80 });

function table(keys: readonly string[], backwards = false): StringTable {
  return new StringTable(new Map(keys.map((key, index) => [key, index])), backwards);
}

function affixHash(value: string, size: number, prefix: boolean): number {
  let hash = HASH_START;
  for (let i = 0; i < size; i++) hash = hashStep(hash, value.charCodeAt(prefix ? i : value.length - 1 - i));
  return hash;
}

test("string table - finds exactly the keys a Map holds, whole, as prefixes and as suffixes", () => {
  fc.assert(
    fc.property(keySets, fc.array(text, { maxLength: 20 }), (keys, probes) => {
      const forwards = table(keys);
      const backwards = table(keys, true);
      const index = new Map(keys.map((key, position) => [key, position]));
      for (const value of [...keys, ...probes]) {
        assert.equal(forwards.get(value, hashText(value)), index.get(value) ?? -1, `get ${JSON.stringify(value)}`);
        for (let size = 0; size <= value.length; size++) {
          const prefix = value.slice(0, size);
          const suffix = value.slice(value.length - size);
          assert.equal(forwards.getAffix(value, size, affixHash(value, size, true), true), index.get(prefix) ?? -1);
          assert.equal(backwards.getAffix(value, size, affixHash(value, size, false), false), index.get(suffix) ?? -1);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test("string table - a table of lower-cased keys finds any value whose lower case is a key", () => {
  fc.assert(
    fc.property(keySets, fc.array(text, { maxLength: 20 }), (keys, probes) => {
      const lowered = [...new Set(keys.map((key) => key.toLowerCase()))];
      const lowerTable = table(lowered);
      const index = new Map(lowered.map((key, position) => [key, position]));
      for (const value of [...keys, ...probes, ...keys.map((key) => key.toUpperCase())]) {
        const lower = value.toLowerCase();
        assert.equal(lowerTable.getLowerCased(value, hashText(lower)), index.get(lower) ?? -1, `lower ${JSON.stringify(value)}`);
      }
    }),
    { numRuns: 300 },
  );
});

test("string table - two keys of one length and one hash are told apart by their code units", () => {
  // Two strings whose 32-bit FNV-1a hashes collide (found by a birthday search).
  const [held, other] = ["k1oze6vd", "k10mvnpi"];
  assert.equal(hashText(held), hashText(other));
  const one = table([held]);
  assert.equal(one.get(held, hashText(held)), 0);
  assert.equal(one.get(other, hashText(other)), -1);
  assert.equal(one.getAffix(`${other}-tail`, other.length, hashText(other), true), -1);
  assert.equal(one.getLowerCased(other.toUpperCase(), hashText(other)), -1);
});

/**
 * Keys hosted in a shared buffer as the laid-out machine hosts them: every other key's code
 * units end at offset 2 × its next state, with other units around them; every third hosted
 * key has a look-ahead. Returns the ways (key → next) and the hosting.
 */
function hostEveryOther(keys: readonly string[]): { ways: Map<string, number>; hosted: HostedKeys; looks: Map<number, { field: number; key: number }> } {
  const units: number[] = [0x7a];
  const ways = new Map<string, number>();
  const hostedKeys = new Map<number, string>();
  const looks = new Map<number, { field: number; key: number }>();
  keys.forEach((key, index) => {
    if (index % 2 === 1) {
      ways.set(key, 1_000_000 + index);
      return;
    }
    if ((units.length + key.length) % 2 === 1) units.push(0x78);
    for (let i = 0; i < key.length; i++) units.push(key.charCodeAt(i));
    const next = units.length / 2;
    units.push(0x79, 0x79);
    ways.set(key, next);
    hostedKeys.set(next, key);
    if (index % 3 === 0) looks.set(next, { field: index % 4, key: index % 5 });
  });
  return {
    ways,
    looks,
    hosted: { units: Uint16Array.from(units), hosts: (key, next) => hostedKeys.get(next) === key, lookAhead: (next) => looks.get(next) },
  };
}

/** A look-ahead that lets the walk on when field + key is even. */
const evenAhead: LookAhead = { mayHold: (field, key) => (field + key) % 2 === 0 };

test("string table - keys hosted elsewhere are found exactly as keys it keeps itself, and a failing look-ahead finds nothing", () => {
  fc.assert(
    fc.property(keySets, fc.array(text, { maxLength: 20 }), fc.boolean(), (keys, probes, backwards) => {
      const { ways, hosted, looks } = hostEveryOther(keys);
      const plain = new StringTable(ways, backwards);
      const withHosted = new StringTable(ways, backwards, hosted);
      const lowered = [...new Set(keys.map((key) => key.toLowerCase()))];
      const lower = hostEveryOther(lowered);
      const lowerPlain = new StringTable(lower.ways);
      const lowerHosted = new StringTable(lower.ways, false, lower.hosted);
      const expectAhead = (found: number, aheadLooks: typeof looks): number => {
        const look = aheadLooks.get(found);
        return look !== undefined && !evenAhead.mayHold(look.field, look.key) ? -1 : found;
      };
      for (const value of [...keys, ...probes, ...keys.map((key) => key.toUpperCase())]) {
        const prefix = !backwards;
        for (let size = 0; size <= value.length; size++) {
          const hash = affixHash(value, size, prefix);
          const found = plain.getAffix(value, size, hash, prefix);
          assert.equal(withHosted.getAffix(value, size, hash, prefix), found, JSON.stringify(value));
          assert.equal(withHosted.getAffix(value, size, hash, prefix, evenAhead), expectAhead(found, looks), JSON.stringify(value));
        }
        const lowerHash = hashText(value.toLowerCase());
        const found = lowerPlain.getLowerCased(value, lowerHash);
        assert.equal(lowerHosted.getLowerCased(value, lowerHash), found, `lower ${JSON.stringify(value)}`);
        assert.equal(lowerHosted.getLowerCased(value, lowerHash, evenAhead), expectAhead(found, lower.looks), `lower ${JSON.stringify(value)}`);
      }
    }),
    { numRuns: 300 },
  );
});
