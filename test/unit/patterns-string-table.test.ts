// The pattern machine's string tables against a plain Map: exact values, prefixes, suffixes
// and lower-cased values, over random keys with non-ASCII code units (whose lower-casing can
// change a string's length) and tables on both sides of the filter size.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { HASH_START, hashStep, hashText } from "../../src/patterns/key-filter.js";
import { StringTable, type HostedKeys } from "../../src/patterns/string-table.js";

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

test("string table - keys hosted elsewhere (every other one) are found exactly as keys it keeps itself", () => {
  fc.assert(
    fc.property(keySets, fc.array(text, { maxLength: 20 }), fc.boolean(), (keys, probes, backwards) => {
      // Host every other key's code units in a shared buffer, at odd and even offsets, with
      // other keys' units around them, as the laid-out machine does before each record.
      const units: number[] = [0x7a];
      const at = new Map<string, number>();
      keys.forEach((key, index) => {
        if (index % 2 === 1) return;
        at.set(key, units.length);
        for (let i = 0; i < key.length; i++) units.push(key.charCodeAt(i));
        units.push(0x78);
      });
      const hosted: HostedKeys = {
        units: Uint16Array.from(units),
        offsetOf: (key, next) => (keys[next] === key ? (at.get(key) ?? -1) : -1),
      };
      const lowered = [...new Set(keys.map((key) => key.toLowerCase()))];
      const plain = new StringTable(new Map(keys.map((key, index) => [key, index])), backwards);
      const withHosted = new StringTable(new Map(keys.map((key, index) => [key, index])), backwards, hosted);
      // All lower-cased keys hosted, one after the other.
      const joined = lowered.join("");
      const lowerHosted: HostedKeys = {
        units: Uint16Array.from({ length: joined.length }, (_, i) => joined.charCodeAt(i)),
        offsetOf: (key, next) => (lowered[next] === key ? lowered.slice(0, next).join("").length : -1),
      };
      const lowerTable = new StringTable(new Map(lowered.map((key, index) => [key, index])), false, lowerHosted);
      const lowerIndex = new Map(lowered.map((key, index) => [key, index]));
      for (const value of [...keys, ...probes, ...keys.map((key) => key.toUpperCase())]) {
        for (let size = 0; size <= value.length; size++) {
          const prefix = !backwards;
          const hash = affixHash(value, size, prefix);
          assert.equal(withHosted.getAffix(value, size, hash, prefix), plain.getAffix(value, size, hash, prefix), JSON.stringify(value));
        }
        const lower = value.toLowerCase();
        assert.equal(lowerTable.getLowerCased(value, hashText(lower)), lowerIndex.get(lower) ?? -1, `lower ${JSON.stringify(value)}`);
      }
    }),
    { numRuns: 300 },
  );
});
