/**
 * How the shared state tells this node's own changes coming back from the bucket from other
 * nodes' changes (`takeEcho` in `src/log/jetstream/shared-state.ts`).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { takeEcho } from "../../src/log/jetstream/shared-state.js";

test("shared state echo - an own change comes back by its revision, or by its text while its put is on its way", () => {
  const sent = [{ text: "a", revision: 7 }, { text: "b" }];
  assert.equal(takeEcho(sent, "a", 7), true);
  assert.deepEqual(sent, [{ text: "b" }]);
  assert.equal(takeEcho(sent, "x", 8), false, "another node's change");
  assert.deepEqual(sent, [{ text: "b" }], "still waiting for its own");
  assert.equal(takeEcho(sent, "b", 9), true);
  assert.deepEqual(sent, []);
});

test("shared state echo - another node's change with the same text at another revision is not taken for the own one", () => {
  const sent = [{ text: "a", revision: 12 }];
  assert.equal(takeEcho(sent, "a", 11), false);
  assert.deepEqual(sent, [{ text: "a", revision: 12 }]);
});

test("shared state echo - an own change whose echo the watch skipped is dropped once a later entry arrives", () => {
  // Revision 5 was replaced in the bucket before the watch read it: the next entry is 6.
  const sent = [{ text: "a", revision: 5 }];
  assert.equal(takeEcho(sent, "z", 6), false, "6 is another node's");
  assert.deepEqual(sent, [], "nothing left to wait for: the key's changes are taken again");
});

test("shared state echo - a skipped own deletion (no revision known) is dropped behind a later own change", () => {
  const sent = [{ text: "<deleted>" }, { text: "c", revision: 21 }];
  assert.equal(takeEcho(sent, "c", 21), true);
  assert.deepEqual(sent, []);
});
