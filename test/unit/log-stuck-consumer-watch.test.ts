/**
 * When the stuck-consumer watch (`src/log/jetstream/stuck-consumer-watch.ts`) calls a dispatch
 * consumer stuck, over sequences of looks like those JetStream shows: a real stall after a
 * leader change is repaired, while a floor merely held by a slow event, one after the change
 * has settled, or one of a consumer just made again is not.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  consumerRemade,
  floorHeld,
  leaderChanged,
  lookAtConsumer,
  type ConsumerLook,
  type ConsumerWatch,
  type WatchVerdict,
} from "../../src/log/jetstream/stuck-consumer-watch.js";

const CLAIM_MS = 5_000;
const STUCK_MS = 3 * CLAIM_MS;

/** Looks taken one claim time apart, as the watch takes them; the verdict of each. */
function run(
  looks: Omit<ConsumerLook, "nowMs">[],
  start: { watch?: ConsumerWatch; atMs?: number } = {},
): { watch: ConsumerWatch; verdicts: WatchVerdict["kind"][]; last: WatchVerdict } {
  let watch = start.watch;
  let nowMs = start.atMs ?? 0;
  const verdicts: WatchVerdict["kind"][] = [];
  let last: WatchVerdict = { kind: "fine" };
  for (const look of looks) {
    const streamLastSeq = leaderChanged(watch, look.leader) ? look.streamLastSeq : undefined;
    const result = lookAtConsumer(watch, { ...look, nowMs, streamLastSeq }, STUCK_MS);
    watch = result.watch;
    last = result.verdict;
    verdicts.push(last.kind);
    nowMs += CLAIM_MS;
  }
  return { watch: watch!, verdicts, last };
}

/** `n` looks at the same floor, leader and outstanding claims. */
function still(n: number, look: Omit<ConsumerLook, "nowMs">): Omit<ConsumerLook, "nowMs">[] {
  return Array.from({ length: n }, () => look);
}

test("stuck-consumer watch - a floor that stays put after a leader change, below what the change can have touched, is suspect after three claim times", () => {
  const { verdicts, last } = run([
    { leader: "n1", floor: 2_966, unacknowledged: 400 },
    { leader: "n2", floor: 2_966, unacknowledged: 400, streamLastSeq: 8_000 },
    ...still(3, { leader: "n2", floor: 2_966, unacknowledged: 900 }),
  ]);
  assert.deepEqual(verdicts, ["fine", "fine", "fine", "fine", "suspect"]);
  assert.deepEqual(last, { kind: "suspect", heldSeq: 2_967, fromSeq: 2_967 });
});

test("stuck-consumer watch - without a leader change a floor that stays put is never suspect", () => {
  const { verdicts } = run(still(20, { leader: "n1", floor: 10, unacknowledged: 5_000 }));
  assert.ok(verdicts.every((v) => v === "fine"));
});

test("stuck-consumer watch - once the floor passed the stream's last sequence at the change, a later stall is not the change's doing", () => {
  // Steady load: the floor moves past 8,000 (the last event when the change was seen), then a
  // target retrying holds event 9,001 for minutes with thousands outstanding behind it.
  const { verdicts, watch } = run([
    { leader: "n1", floor: 7_000, unacknowledged: 900 },
    { leader: "n2", floor: 7_000, unacknowledged: 900, streamLastSeq: 8_000 },
    { leader: "n2", floor: 8_400, unacknowledged: 900 },
    { leader: "n2", floor: 9_000, unacknowledged: 900 },
    ...still(30, { leader: "n2", floor: 9_000, unacknowledged: 20_000 }),
  ]);
  assert.equal(watch.change, undefined);
  assert.ok(verdicts.every((v) => v === "fine"), verdicts.join());
});

test("stuck-consumer watch - the floor reaching the bound exactly ends the watch; one short of it does not", () => {
  const looks = (floor: number) => [
    { leader: "n1", floor: 100, unacknowledged: 50 },
    { leader: "n2", floor: 100, unacknowledged: 50, streamLastSeq: 500 },
    ...still(5, { leader: "n2", floor, unacknowledged: 50 }),
  ];
  assert.ok(run(looks(500)).verdicts.every((v) => v === "fine"));
  assert.equal(run(looks(499)).last.kind, "suspect");
});

test("stuck-consumer watch - a consumer made again is not watched as if its leader had changed: no repair after repair", () => {
  // What b65532f did: the consumer made again, slow on an event held by a target retrying,
  // was repaired again every three claim times under steady load.
  const remade = consumerRemade(2_967, "n3", 0);
  const { verdicts } = run(still(30, { leader: "n3", floor: 2_966, unacknowledged: 20_000 }), { watch: remade, atMs: CLAIM_MS });
  assert.ok(verdicts.every((v) => v === "fine"), verdicts.join());
});

test("stuck-consumer watch - a consumer made again whose leader then changes is watched again", () => {
  const remade = consumerRemade(2_967, "n3", 0);
  const { verdicts } = run(
    [{ leader: "n1", floor: 3_000, unacknowledged: 10, streamLastSeq: 9_000 }, ...still(3, { leader: "n1", floor: 3_000, unacknowledged: 10 })],
    { watch: remade, atMs: CLAIM_MS },
  );
  assert.deepEqual(verdicts, ["fine", "fine", "fine", "suspect"]);
});

test("stuck-consumer watch - a floor held by a live node is counted again from when it was held; if the node's ack does not move it, it is suspect again", () => {
  const first = run([
    { leader: "n1", floor: 40, unacknowledged: 10 },
    { leader: "n2", floor: 40, unacknowledged: 10, streamLastSeq: 100 },
    ...still(3, { leader: "n2", floor: 40, unacknowledged: 10 }),
  ]);
  assert.equal(first.last.kind, "suspect");
  const heldAtMs = 4 * CLAIM_MS;
  const held = floorHeld(first.watch, heldAtMs);
  const after = run(still(3, { leader: "n2", floor: 40, unacknowledged: 10 }), { watch: held, atMs: heldAtMs + CLAIM_MS });
  assert.deepEqual(after.verdicts, ["fine", "fine", "suspect"]);
});

test("stuck-consumer watch - nothing outstanding is never stuck", () => {
  const { verdicts } = run([
    { leader: "n1", floor: 40, unacknowledged: 10 },
    { leader: "n2", floor: 40, unacknowledged: 0, streamLastSeq: 100 },
    ...still(6, { leader: "n2", floor: 40, unacknowledged: 0 }),
  ]);
  assert.ok(verdicts.every((v) => v === "fine"));
});

test("stuck-consumer watch - a floor that moved after the change and then stalls is made again from the floor before the change", () => {
  // The bug can move the floor past claims the old leader handed out and the new one lost.
  const { last } = run([
    { leader: "n1", floor: 1_000, unacknowledged: 300 },
    { leader: "n2", floor: 1_200, unacknowledged: 300, streamLastSeq: 5_000 },
    ...still(4, { leader: "n2", floor: 1_500, unacknowledged: 300 }),
  ]);
  assert.deepEqual(last, { kind: "suspect", heldSeq: 1_501, fromSeq: 1_001 });
});

test("stuck-consumer watch - a second change keeps the first floor before and widens the bound; three claim times count from the latest", () => {
  const { verdicts, watch } = run([
    { leader: "n1", floor: 100, unacknowledged: 30 },
    { leader: "n2", floor: 100, unacknowledged: 30, streamLastSeq: 400 },
    { leader: "n2", floor: 150, unacknowledged: 30 },
    { leader: "n3", floor: 150, unacknowledged: 30, streamLastSeq: 600 },
    ...still(3, { leader: "n3", floor: 150, unacknowledged: 30 }),
  ]);
  assert.deepEqual(watch.change && { floorBefore: watch.change.floorBefore, lastSeqAtChange: watch.change.lastSeqAtChange }, {
    floorBefore: 100,
    lastSeqAtChange: 600,
  });
  assert.deepEqual(verdicts, ["fine", "fine", "fine", "fine", "fine", "fine", "suspect"]);
});

test("stuck-consumer watch - a change seen without the stream's last sequence is bounded by nothing: it ends only with a repair", () => {
  const { watch } = run([
    { leader: "n1", floor: 100, unacknowledged: 30 },
    { leader: "n2", floor: 100, unacknowledged: 30 },
    { leader: "n2", floor: 1_000_000, unacknowledged: 30 },
  ]);
  assert.notEqual(watch.change, undefined);
});
