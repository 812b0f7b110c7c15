/**
 * Acked means durable: clients publish while the server is killed with SIGKILL, again and
 * again; after restarts every acked event is in the log and reached its webhook at least once.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createReceiver } from "../helpers/receiver.js";
import { freePort, spawnRelaybus } from "../helpers/relaybus-process.js";

const CYCLES = 3;
const PUBLISHERS = 16;
const PUBLISH_MS = 1_200;

test("crash recovery - every acked event survives SIGKILL and is delivered at least once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-crash-"));
  const rulesDir = join(dir, "rules");
  mkdirSync(rulesDir);
  const receiver = await createReceiver();
  writeFileSync(
    join(rulesDir, "all.yaml"),
    `bus: default
rules:
  - name: everything
    pattern: {source: [crash.test]}
    targets:
      - id: hook
        webhook: {url: "${receiver.url}/hook"}
        format: cloudevents-structured
        retry: {baseDelayMs: 50, maxDelayMs: 500}
`,
  );
  const port = await freePort();
  const acked = new Set<string>();
  let sent = 0;
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const server = await spawnRelaybus({ port, dataDir: join(dir, "data"), rulesDir });
      let publishing = true;
      const publisher = async (worker: number) => {
        let n = 0;
        while (publishing) {
          const id = `c${cycle}-w${worker}-${n++}`;
          sent++;
          try {
            const response = await fetch(`${server.url}/v1/buses/default/cloudevents`, {
              method: "POST",
              headers: { "content-type": "application/cloudevents+json" },
              body: JSON.stringify({ specversion: "1.0", id, source: "crash.test", type: "t", data: { n } }),
            });
            if (response.status === 200) acked.add(id);
            await response.arrayBuffer();
          } catch {
            // The server died mid-request: not acked, so no promise was made.
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      };
      const workers = Array.from({ length: PUBLISHERS }, (_, w) => publisher(w));
      await new Promise((r) => setTimeout(r, PUBLISH_MS));
      await server.kill();
      publishing = false;
      await Promise.all(workers);
    }

    const server = await spawnRelaybus({ port, dataDir: join(dir, "data"), rulesDir });
    try {
      assert.ok(acked.size > 100, `enough events were acked to mean something (${acked.size} of ${sent})`);

      // Every acked event is in the log.
      const inLog = new Set<string>();
      let after = 0;
      for (;;) {
        const page = (await (await fetch(`${server.url}/v1/buses/default/events?after=${after}&limit=1000`)).json()) as {
          events: { offset: number; event: { id: string } }[];
          nextAfter: number;
        };
        if (page.events.length === 0) break;
        for (const e of page.events) inLog.add(e.event.id);
        after = page.nextAfter;
      }
      const missingFromLog = [...acked].filter((id) => !inLog.has(id));
      assert.deepEqual(missingFromLog, [], "acked events missing from the log");

      // Every acked event reaches the webhook at least once (duplicates are allowed).
      const deadline = Date.now() + 60_000;
      let missing: string[] = [];
      for (;;) {
        const delivered = new Set(receiver.requestsTo("/hook").map((r) => (JSON.parse(r.body) as { id: string }).id));
        missing = [...acked].filter((id) => !delivered.has(id));
        if (missing.length === 0 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(missing.length, 0, `acked events never delivered: ${missing.slice(0, 10).join(", ")}`);
      const deliveries = receiver.requestsTo("/hook").length;
      console.log(`crash recovery: ${CYCLES} kills, ${sent} sent, ${acked.size} acked, ${deliveries} deliveries (${deliveries - acked.size} duplicates or unacked-but-stored)`);
    } finally {
      await server.stop();
    }
  } finally {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
