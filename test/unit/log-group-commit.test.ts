import assert from "node:assert/strict";
import { test } from "node:test";
import { createGroupCommitter } from "../../src/log/sqlite/group-commit.js";

/** A committer that records each batch and doubles the items, or fails when told to. */
function recording(maxItems: number) {
  const batches: number[][][] = [];
  let failNext: Error | undefined;
  const committer = createGroupCommitter<number, number>({
    maxItems,
    commit(calls) {
      batches.push(calls.map((call) => [...call]));
      if (failNext) {
        const error = failNext;
        failNext = undefined;
        throw error;
      }
      return calls.map((call) => call.map((n) => n * 2));
    },
  });
  return { committer, batches, failOnce: (error: Error) => (failNext = error) };
}

test("group commit - calls of one turn share one commit, each gets its own results", async () => {
  const { committer, batches } = recording(100);
  const results = await Promise.all([
    committer.submit([1, 2]),
    committer.submit([3]),
    committer.submit([4, 5]),
  ]);
  assert.deepEqual(results, [[2, 4], [6], [8, 10]]);
  assert.deepEqual(batches, [[[1, 2], [3], [4, 5]]]);
});

test("group commit - calls of later turns go in later commits", async () => {
  const { committer, batches } = recording(100);
  await committer.submit([1]);
  await committer.submit([2]);
  assert.deepEqual(batches, [[[1]], [[2]]]);
});

test("group commit - batches stop at maxItems without splitting a call", async () => {
  const { committer, batches } = recording(3);
  await Promise.all([
    committer.submit([1, 2]),
    committer.submit([3, 4]),
    committer.submit([5, 6, 7, 8]),
    committer.submit([9]),
  ]);
  assert.deepEqual(batches, [[[1, 2]], [[3, 4]], [[5, 6, 7, 8]], [[9]]]);
});

test("group commit - a failed commit rejects every call in it, and only those", async () => {
  const { committer, failOnce } = recording(2);
  failOnce(new Error("disk full"));
  const results = await Promise.allSettled([
    committer.submit([1]),
    committer.submit([2]),
    committer.submit([3]),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["rejected", "rejected", "fulfilled"],
  );
  assert.equal(
    results[0]?.status === "rejected" && (results[0].reason as Error).message,
    "disk full",
  );
  assert.deepEqual(results[2]?.status === "fulfilled" && results[2].value, [6]);
});

test("group commit - drain commits everything queued at once", async () => {
  const { committer, batches } = recording(2);
  const pending = [committer.submit([1]), committer.submit([2]), committer.submit([3])];
  assert.equal(committer.pendingCalls, 3);
  committer.drain();
  assert.equal(committer.pendingCalls, 0);
  assert.deepEqual(batches, [[[1], [2]], [[3]]]);
  assert.deepEqual(await Promise.all(pending), [[2], [4], [6]]);
});
