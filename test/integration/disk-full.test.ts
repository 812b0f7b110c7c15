/**
 * A full disk under the log. The log file is capped with SQLite's `max_page_count` on the log
 * writer's own connection (`SqliteStorage.logWriterPragma`): a commit that needs a page past
 * the cap fails with SQLITE_FULL exactly as on a full filesystem, and the test needs neither
 * root nor a small mount. Publishers keep sending while the file fills up; then:
 *
 * - every ingest route answers 503 `ServiceUnavailable` with `Retry-After`, reads still work;
 * - nothing half-written: the log holds exactly the acked events, none of a refused request;
 * - once space comes back (the cap is lifted) ingest recovers at once, the log passes
 *   `PRAGMA integrity_check`, its offsets run without a gap, every acked event is delivered,
 *   and all of it survives a restart.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { SqliteStorage } from "../../src/log/sqlite/index.js";
import { createReceiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

/** SQLite's largest page count: the cap lifted. */
const NO_CAP = 1_073_741_823;
/** Room left when the cap is set: a few 16 KB pages, filled within a second of publishing. */
const SLACK_PAGES = 3;
const PUBLISHERS = 6;

interface ErrorBody {
  error: { code: string; message: string; details?: { sqliteCode?: string } };
}

const rules = (receiverUrl: string) => `bus: default
rules:
  - name: everything
    pattern: {source: [disk.put, disk.ce]}
    targets:
      - id: hook
        webhook: {url: "${receiverUrl}/hook"}
        format: cloudevents-structured
        retry: {baseDelayMs: 20, maxDelayMs: 200}
`;

/** Every event of a bus through the API: offsets and ids. */
async function readLog(service: TestService): Promise<{ offsets: number[]; ids: string[] }> {
  const offsets: number[] = [];
  const ids: string[] = [];
  let after = 0;
  for (;;) {
    const response = await service.get(`/v1/buses/default/events?after=${after}&limit=1000`);
    assert.equal(response.status, 200, "reading the log works, full disk or not");
    const page = (await response.json()) as {
      events: { offset: number; event: { id: string } }[];
      nextAfter: number;
    };
    if (page.events.length === 0) return { offsets, ids };
    for (const { offset, event } of page.events) {
      offsets.push(offset);
      ids.push(event.id);
    }
    after = page.nextAfter;
  }
}

test("disk full - ingest answers 503 with Retry-After, loses and half-writes nothing, and recovers", async () => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-disk-full-"));
  const receiver = await createReceiver();
  let service = await startTestService({ dir, rules: { "disk.yaml": rules(receiver.url) } });
  const acked = new Set<string>();
  const refused = new Set<string>();
  const failures: string[] = [];
  let sequence = 0;

  /** One request of each kind in turn: PutEvents, a CloudEvent, a CloudEvents batch. */
  const publish = async (): Promise<number> => {
    const n = sequence++;
    const blob = "d".repeat(2_000);
    if (n % 3 === 0) {
      const response = await service.post("/v1/events", {
        Entries: [0, 1, 2].map((i) => ({
          Source: "disk.put",
          DetailType: "t",
          Detail: JSON.stringify({ n, i, blob }),
        })),
      });
      const text = await response.text();
      if (response.status === 200) {
        for (const entry of (JSON.parse(text) as { Entries: { EventId?: string }[] }).Entries) {
          if (entry.EventId !== undefined) acked.add(entry.EventId);
          else failures.push(`PutEvents entry failed: ${text}`);
        }
      } else checkRefusal(response, text);
      return response.status;
    }
    const ids = [0, 1, 2].map((i) => `disk-${n}-${i}`);
    const events = ids.map((id) => ({
      specversion: "1.0",
      id,
      source: "disk.ce",
      type: "t",
      data: { n, blob },
    }));
    const batch = n % 3 === 2;
    const response = await service.post(
      `/v1/buses/default/cloudevents`,
      batch ? events : events[0],
      {
        "content-type": batch
          ? "application/cloudevents-batch+json"
          : "application/cloudevents+json",
      },
    );
    const text = await response.text();
    const sent = batch ? ids : ids.slice(0, 1);
    if (response.status === 200) for (const id of sent) acked.add(id);
    else {
      checkRefusal(response, text);
      for (const id of sent) refused.add(id);
    }
    return response.status;
  };

  const checkRefusal = (response: Response, text: string) => {
    if (response.status !== 503)
      return void failures.push(`expected 200 or 503, got ${response.status} ${text}`);
    if (response.headers.get("retry-after") === null) failures.push("a 503 without Retry-After");
    const body = JSON.parse(text) as ErrorBody;
    if (body.error.code !== "ServiceUnavailable") failures.push(`503 with code ${body.error.code}`);
    if (body.error.details?.sqliteCode !== "SQLITE_FULL")
      failures.push(`503 not for SQLITE_FULL: ${text}`);
  };

  try {
    const storage = () => service.storage as SqliteStorage;
    for (let i = 0; i < 30; i++) assert.equal(await publish(), 200);

    // The disk fills up while publishers keep sending.
    const pages = (await storage().logWriterPragma("page_count")) as number;
    await storage().logWriterPragma(`max_page_count = ${pages + SLACK_PAGES}`);
    const statuses = new Map<number, number>();
    let refusals = 0;
    const deadline = Date.now() + 10_000;
    await Promise.all(
      Array.from({ length: PUBLISHERS }, async () => {
        while (refusals < 30 && Date.now() < deadline) {
          const status = await publish();
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === 503) refusals += 1;
        }
      }),
    );
    assert.deepEqual(failures, []);
    assert.ok(
      (statuses.get(200) ?? 0) > 0,
      `some requests still fit before the disk was full: ${JSON.stringify([...statuses])}`,
    );
    assert.ok(refusals >= 30, `a full disk answers 503: ${JSON.stringify([...statuses])}`);
    // Requests of the larger kinds were refused; a single small event may still fit. Fill
    // what is left with those (each one acked is counted), until even one is refused.
    let smallRefused = false;
    for (let i = 0; i < 500 && !smallRefused; i++) {
      sequence += (4 - (sequence % 3)) % 3; // the next publish is a single CloudEvent
      smallRefused = (await publish()) === 503;
    }
    assert.ok(smallRefused, "in the end even a single small event is refused");
    // Full now: every kind of publish is refused, whole.
    for (let i = 0; i < 6; i++) assert.equal(await publish(), 503);
    assert.deepEqual(failures, []);

    // Nothing half-written: exactly the acked events are in the log, none of a refused request.
    const whileFull = await readLog(service);
    assert.deepEqual(new Set(whileFull.ids), acked, "the log holds exactly the acked events");
    assert.deepEqual(
      [...refused].filter((id) => whileFull.ids.includes(id)),
      [],
      "no event of a refused request is stored",
    );
    assert.deepEqual(
      whileFull.offsets,
      whileFull.ids.map((_, i) => i + 1),
      "offsets run without a gap",
    );

    // Space comes back: ingest recovers at once, and the file is sound.
    await storage().logWriterPragma(`max_page_count = ${NO_CAP}`);
    for (let i = 0; i < 9; i++) assert.equal(await publish(), 200);
    assert.deepEqual(failures, []);
    assert.equal(await storage().logWriterPragma("integrity_check"), "ok");
    const recovered = await readLog(service);
    assert.deepEqual(new Set(recovered.ids), acked);
    assert.deepEqual(
      recovered.offsets,
      recovered.ids.map((_, i) => i + 1),
      "offsets continue without a gap",
    );

    // Every acked event reaches the webhook at least once.
    const wanted = [...acked];
    const until = Date.now() + 20_000;
    let missing = wanted;
    while (missing.length > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      const delivered = new Set(
        receiver.requestsTo("/hook").map((r) => (JSON.parse(r.body) as { id: string }).id),
      );
      missing = wanted.filter((id) => !delivered.has(id));
    }
    assert.deepEqual(missing, [], "acked events not delivered");

    // And all of it survives a restart on the same files.
    await service.close();
    service = await startTestService({ dir, rules: { "disk.yaml": rules(receiver.url) } });
    assert.equal(await storage().logWriterPragma("integrity_check"), "ok");
    const reopened = await readLog(service);
    assert.deepEqual(reopened.ids, recovered.ids);
    assert.equal(await publish(), 200);
    console.log(
      `disk full: ${acked.size} events acked, ${refusals} requests refused with 503 while full (${JSON.stringify(Object.fromEntries(statuses))})`,
    );
  } finally {
    await service.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
