/**
 * The acceptance test of replays (issue 4, item 7): a replay of 100,000 events to one target
 * arrives complete and in order. The events go straight into the log (ingest is not what is
 * tested); a rule that takes replays only (originals carry no `replayname`) sends them to a
 * real receiver on loopback. Delivery is at least once, so arrivals are judged by the first
 * request of each `webhook-id`: every event must arrive, and first arrivals must follow the
 * log's order.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { measureEvent } from "../../src/events/sizing.js";
import type { CloudEvent } from "../../src/types.js";
import { createReceiver } from "../helpers/receiver.js";
import { startTestService } from "../helpers/service.js";

const EVENTS = 100_000;
const APPEND_BATCH = 5_000;
const DEADLINE_MS = 110_000;

test("replay - 100,000 events replayed to one target arrive complete and in log order", async (t) => {
  const receiver = await createReceiver();
  const service = await startTestService({
    rules: {
      "bulk.yaml": `bus: bulk
rules:
  - name: replays-only
    pattern: {source: [bulk.test], replayname: [{exists: true}]}
    targets:
      - id: sink
        webhook: {url: "${receiver.url}/sink"}
        format: data
`,
    },
  });
  t.after(async () => {
    await service.close();
    await receiver.close();
  });

  const appendStarted = Date.now();
  for (let from = 0; from < EVENTS; from += APPEND_BATCH) {
    const batch = [];
    for (let i = from; i < from + APPEND_BATCH; i++) {
      const event: CloudEvent = {
        specversion: "1.0",
        id: `bulk-${i}`,
        source: "bulk.test",
        type: "bulk.item",
        data: { i },
      };
      batch.push(measureEvent("bulk", event));
    }
    await service.storage.log.append(batch);
  }
  t.diagnostic(`appended ${EVENTS} events in ${Date.now() - appendStarted} ms`);

  const started = Date.now();
  const answer = await service.post("/v1/replays", {
    name: "bulk-100k",
    source: { bus: "bulk" },
    fromTime: 0,
    toTime: Date.now() + 1_000,
    destination: { bus: "bulk", rule: "replays-only", targetId: "sink" },
  });
  assert.equal(answer.status, 201);
  assert.equal(((await answer.json()) as { total: number }).total, EVENTS);

  // First arrival per webhook-id, in arrival order; repeats of an id are at-least-once retries.
  const firstArrivals: number[] = [];
  const seen = new Set<string>();
  let scanned = 0;
  let repeats = 0;
  for (;;) {
    const requests = receiver.requests;
    for (; scanned < requests.length; scanned++) {
      const request = requests[scanned]!;
      const id = String(request.headers["webhook-id"]);
      if (seen.has(id)) {
        repeats++;
        continue;
      }
      seen.add(id);
      assert.equal(request.headers["relaybus-replay"], "bulk-100k");
      firstArrivals.push((JSON.parse(request.body) as { i: number }).i);
    }
    if (firstArrivals.length >= EVENTS) break;
    assert.ok(
      Date.now() - started < DEADLINE_MS,
      `after ${DEADLINE_MS} ms only ${firstArrivals.length} of ${EVENTS} events arrived`,
    );
    await new Promise((r) => setTimeout(r, 100));
  }
  const elapsedMs = Date.now() - started;
  t.diagnostic(
    `replayed ${EVENTS} events in ${elapsedMs} ms (${Math.round(EVENTS / (elapsedMs / 1000))} events/s), ${repeats} repeated requests`,
  );

  assert.equal(firstArrivals.length, EVENTS);
  assert.equal(new Set(firstArrivals).size, EVENTS, "every event once");
  let outOfOrder = 0;
  for (let k = 0; k < EVENTS; k++) if (firstArrivals[k] !== k) outOfOrder++;
  assert.equal(outOfOrder, 0, `${outOfOrder} of ${EVENTS} events arrived out of log order`);

  const replay = (await (await service.get("/v1/replays/bulk-100k")).json()) as Record<
    string,
    unknown
  >;
  assert.equal(replay.state, "completed");
  assert.equal(replay.replayed, EVENTS);
  assert.equal(replay.total, EVENTS);
  assert.equal(replay.deliveries, EVENTS);
});
