/**
 * Chaos: the real server, as a child process, is killed with SIGKILL at random moments while
 * publishers send PutEvents and CloudEvents (single and batch) without pause, and restarted on
 * the same data directory, at least 20 times. Every event acked with a 200 (every PutEvents
 * entry with an EventId, every CloudEvent of a 200 answer) must be in the log afterwards, the
 * log's offsets must run without a gap, and every acked event must reach the webhook at least
 * once. The kill moments come from a seeded generator (`CHAOS_SEED=<n>` for another run).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createReceiver } from "../helpers/receiver.js";
import { freePort, spawnRelaybus, type RelaybusProcess } from "../helpers/relaybus-process.js";

const CYCLES = 20;
const PUBLISHERS = 8;
/** How long the server lives in a cycle before the kill: uniform in this range. */
const MIN_UPTIME_MS = 60;
const MAX_UPTIME_MS = 900;
const SEED = Number(process.env.CHAOS_SEED ?? 8_005);

/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface LogPage {
  events: { offset: number; event: { id: string } }[];
  nextAfter: number;
}

test("crash kill restart - 20 SIGKILLs under load lose no acked event and deliver each at least once", async () => {
  // Two generators: the kill moments stay the same for a seed however the publishers interleave.
  const killRandom = seededRandom(SEED);
  const random = seededRandom(SEED + 1);
  const dir = mkdtempSync(join(tmpdir(), "relaybus-chaos-"));
  const rulesDir = join(dir, "rules");
  const dataDir = join(dir, "data");
  mkdirSync(rulesDir);
  const receiver = await createReceiver();
  writeFileSync(
    join(rulesDir, "chaos.yaml"),
    `bus: default
rules:
  - name: everything
    pattern: {source: [chaos.put, chaos.ce]}
    targets:
      - id: hook
        webhook: {url: "${receiver.url}/hook"}
        format: cloudevents-structured
        retry: {baseDelayMs: 50, maxDelayMs: 500}
`,
  );
  const port = await freePort();
  const acked = new Set<string>();
  const stats = { requests: 0, ackedRequests: 0, refused: 0, failed: 0 };
  let server: RelaybusProcess | undefined;
  const startedAt = Date.now();
  console.log(`crash kill restart: seed ${SEED} (CHAOS_SEED=<n> to change)`);

  /** One request; its acked ids are recorded only on a 200 answer read in full. */
  const publishOnce = async (url: string, worker: number, n: number) => {
    const kind = random();
    const size = 1 + Math.floor(random() * 5);
    stats.requests += 1;
    try {
      if (kind < 0.4) {
        const entries = Array.from({ length: size }, (_, i) => ({
          Source: "chaos.put",
          DetailType: "t",
          Detail: JSON.stringify({ worker, n, i }),
        }));
        const response = await fetch(`${url}/v1/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ Entries: entries }),
        });
        const text = await response.text();
        if (response.status !== 200) return void (stats.refused += 1);
        const body = JSON.parse(text) as { Entries: { EventId?: string; ErrorCode?: string }[] };
        stats.ackedRequests += 1;
        for (const entry of body.Entries)
          if (entry.EventId !== undefined && entry.ErrorCode === undefined)
            acked.add(entry.EventId);
        return;
      }
      const ids = Array.from(
        { length: size },
        (_, i) => `ce-${worker}-${n}-${i}-${Math.floor(random() * 1e9)}`,
      );
      const batch = kind < 0.7;
      const events = ids.map((id) => ({
        specversion: "1.0",
        id,
        source: "chaos.ce",
        type: "t",
        data: { worker, n },
      }));
      const response = await fetch(`${url}/v1/buses/default/cloudevents`, {
        method: "POST",
        headers: {
          "content-type": batch
            ? "application/cloudevents-batch+json"
            : "application/cloudevents+json",
        },
        body: JSON.stringify(batch ? events : events[0]),
      });
      const text = await response.text();
      if (response.status !== 200) return void (stats.refused += 1);
      stats.ackedRequests += 1;
      if (!batch) {
        acked.add(ids[0] ?? "");
        return;
      }
      const results = JSON.parse(text) as
        { results?: { id?: string; error?: unknown }[] } | { id?: string; error?: unknown }[];
      const list = Array.isArray(results) ? results : (results.results ?? []);
      for (const result of list)
        if (result.id !== undefined && result.error === undefined) acked.add(result.id);
    } catch {
      // Killed mid-request: no answer, so no promise was made.
      stats.failed += 1;
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      server = await spawnRelaybus({ port, dataDir, rulesDir });
      const url = server.url;
      let publishing = true;
      const workers = Array.from({ length: PUBLISHERS }, async (_, worker) => {
        let n = 0;
        while (publishing) await publishOnce(url, worker, n++);
      });
      await new Promise((r) =>
        setTimeout(r, MIN_UPTIME_MS + killRandom() * (MAX_UPTIME_MS - MIN_UPTIME_MS)),
      );
      await server.kill();
      server = undefined;
      publishing = false;
      await Promise.all(workers);
    }

    server = await spawnRelaybus({ port, dataDir, rulesDir });
    assert.ok(
      acked.size > CYCLES * 20,
      `enough events were acked to mean something (${acked.size})`,
    );

    // Every acked event is in the log, and the offsets run 1, 2, 3, ... without a gap.
    const inLog = new Set<string>();
    let after = 0;
    let expectedOffset = 1;
    for (;;) {
      const response = await fetch(
        `${server.url}/v1/buses/default/events?after=${after}&limit=1000`,
      );
      assert.equal(response.status, 200);
      const page = (await response.json()) as LogPage;
      if (page.events.length === 0) break;
      for (const { offset, event } of page.events) {
        assert.equal(offset, expectedOffset++, "the log's offsets run without a gap");
        inLog.add(event.id);
      }
      after = page.nextAfter;
    }
    const missingFromLog = [...acked].filter((id) => !inLog.has(id));
    assert.deepEqual(
      missingFromLog.slice(0, 10),
      [],
      `${missingFromLog.length} acked events missing from the log`,
    );

    // Every acked event reaches the webhook at least once (duplicates are allowed).
    const deadline = Date.now() + 30_000;
    let missing: string[] = [];
    for (;;) {
      const delivered = new Set(
        receiver.requestsTo("/hook").map((r) => (JSON.parse(r.body) as { id: string }).id),
      );
      missing = [...acked].filter((id) => !delivered.has(id));
      if (missing.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acked events never delivered`);
    const deliveries = receiver.requestsTo("/hook").length;
    console.log(
      `crash kill restart: ${CYCLES} kills in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; ${stats.requests} requests, ${stats.ackedRequests} acked, ${stats.refused} refused, ${stats.failed} cut by a kill; ${acked.size} events acked, ${inLog.size} in the log, ${deliveries} deliveries`,
    );
  } finally {
    if (server !== undefined) await server.stop();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
