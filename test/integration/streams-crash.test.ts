/**
 * Killing Relaybus (SIGKILL) in the middle of a stream loses no event between source and
 * sink: the bus source resumes from the position saved with the last batch the sink
 * confirmed, so events the sink may already hold come again (counted) and none is skipped.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createReceiver } from "../helpers/receiver.js";
import { freePort, spawnRelaybus, type RelaybusProcess } from "../helpers/relaybus-process.js";

const KILLS = 3;

test("streams crash - SIGKILLs during a stream lose no event between source and sink; duplicates are counted", async () => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-stream-crash-"));
  const rulesDir = join(dir, "rules");
  const dataDir = join(dir, "data");
  mkdirSync(rulesDir);
  const receiver = await createReceiver();
  // A slow sink (5 ms a request) keeps batches in flight when the kill comes.
  receiver.always("/sink", { status: 200, delayMs: 5 });
  writeFileSync(
    join(rulesDir, "pipe.yaml"),
    `bus: orders
streams:
  - name: pipe
    source: {bus: {bus: orders, startAt: oldest}}
    sink: {webhook: {url: "${receiver.url}/sink", mode: batch}}
    batch: {maxEvents: 25, maxWaitMs: 5}
`,
  );
  const port = await freePort();
  const acked = new Set<string>();
  let server: RelaybusProcess | undefined;
  let n = 0;
  try {
    for (let cycle = 0; cycle <= KILLS; cycle++) {
      server = await spawnRelaybus({ port, dataDir, rulesDir });
      const url = server.url;
      const publishFor = async (ms: number) => {
        const until = Date.now() + ms;
        while (Date.now() < until) {
          const entries = Array.from({ length: 10 }, () => ({ Source: "crash", DetailType: "t", Detail: JSON.stringify({ n: n++ }), EventBusName: "orders" }));
          try {
            const response = await fetch(`${url}/v1/events`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ Entries: entries }),
            });
            if (response.status !== 200) continue;
            const body = (await response.json()) as { Entries: { EventId?: string }[] };
            for (const entry of body.Entries) if (entry.EventId !== undefined) acked.add(entry.EventId);
          } catch {
            return;
          }
        }
      };
      await publishFor(cycle < KILLS ? 700 + cycle * 150 : 300);
      if (cycle < KILLS) await server.kill();
    }
    // The last run drains the stream.
    const deadline = Date.now() + 60_000;
    let seen = new Map<string, number>();
    while (Date.now() < deadline) {
      seen = new Map();
      for (const request of receiver.requestsTo("/sink")) {
        for (const event of JSON.parse(request.body) as { id: string }[]) seen.set(event.id, (seen.get(event.id) ?? 0) + 1);
      }
      if ([...acked].every((id) => seen.has(id))) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const missing = [...acked].filter((id) => !seen.has(id));
    const duplicates = [...seen.values()].reduce((sum, count) => sum + count - 1, 0);
    console.log(`streams crash: ${acked.size} events acked, ${KILLS} kills, ${missing.length} missing, ${duplicates} duplicates at the sink`);
    assert.ok(acked.size > 500, `enough load: ${acked.size} events`);
    assert.deepEqual(missing, [], "every acked event reached the sink");
    const status = (await (await fetch(`${server!.url}/v1/streams/pipe`)).json()) as { counters: { eventsOut: number } };
    // Each event is confirmed (and counted) once: the writes a kill cut off before their
    // confirmation are the duplicates, and are not counted.
    assert.ok(status.counters.eventsOut >= acked.size, `counted ${status.counters.eventsOut} of ${acked.size}`);
    assert.ok(status.counters.eventsOut <= seen.size, `counted ${status.counters.eventsOut}, distinct at the sink ${seen.size}`);
  } finally {
    await server?.stop();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
