import assert from "node:assert/strict";
import { test } from "node:test";
import { createGroupCommitter } from "../../src/log/sqlite/group-commit.js";

/** A committer over calls that are arrays of numbers; it records each batch it commits. */
function recording(maxItems: number) {
  const batches: number[][][] = [];
  const committer = createGroupCommitter<number[]>({
    maxItems,
    sizeOf: (call) => call.length,
    commit(batch) {
      batches.push(batch.map((call) => [...call]));
    },
  });
  /** Resolves after the immediates queued so far (and the ones they queue) have run. */
  const turns = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  return { committer, batches, turns };
}

test("group commit - calls of one turn share one commit, in order", async () => {
  const { committer, batches, turns } = recording(100);
  committer.submit([1, 2]);
  committer.submit([3]);
  committer.submit([4, 5]);
  assert.deepEqual(batches, [], "nothing commits before the end of the turn");
  await turns(1);
  assert.deepEqual(batches, [[[1, 2], [3], [4, 5]]]);
});

test("group commit - calls of later turns go in later commits", async () => {
  const { committer, batches, turns } = recording(100);
  committer.submit([1]);
  await turns(1);
  committer.submit([2]);
  await turns(1);
  assert.deepEqual(batches, [[[1]], [[2]]]);
});

test("group commit - one batch per turn, stopping at maxItems without splitting a call", async () => {
  const { committer, batches, turns } = recording(3);
  committer.submit([1, 2]);
  committer.submit([3, 4]);
  committer.submit([5, 6, 7, 8]);
  committer.submit([9]);
  await turns(1);
  assert.deepEqual(batches, [[[1, 2]]]);
  assert.equal(committer.pendingCalls, 3);
  await turns(3);
  assert.deepEqual(batches, [[[1, 2]], [[3, 4]], [[5, 6, 7, 8]], [[9]]]);
  assert.equal(committer.pendingCalls, 0);
});

test("group commit - drain commits everything queued at once", async () => {
  const { committer, batches, turns } = recording(2);
  committer.submit([1]);
  committer.submit([2]);
  committer.submit([3]);
  assert.equal(committer.pendingCalls, 3);
  committer.drain();
  assert.equal(committer.pendingCalls, 0);
  assert.deepEqual(batches, [[[1], [2]], [[3]]]);
  await turns(2);
  assert.equal(batches.length, 2, "the cancelled turn commits nothing more");
});
