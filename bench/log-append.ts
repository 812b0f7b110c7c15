/**
 * Durable appends per second of the SQLite log: 64 concurrent callers each appending in a
 * loop (as 64 HTTP requests in flight would), with 1-event and 10-event appends, under both
 * durability modes, with random (v4) and time-ordered (v7) event ids. Every append is awaited,
 * so every counted event was committed.
 *
 * Run: npm run bench:log [-- seconds per case, default 3]
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DurabilityMode } from "../src/config/defaults.js";
import { uuidV7 } from "../src/events/uuid-v7.js";
import { openSqliteStorage } from "../src/log/sqlite/index.js";
import type { CloudEvent, EventToAppend } from "../src/types.js";

const CALLERS = 64;
const SECONDS = Number(process.argv[2] ?? 3);

/** The ids events carry: random UUIDs (v4, what producers send) or time-ordered ones (v7). */
type IdKind = "uuid-v4" | "uuid-v7";

/**
 * Events of ~400 bytes that differ only in their id. The id (and so the JSON) must be fresh
 * for every append, as in production: the `(bus, event_id)` index costs depend on it.
 * Building them is cheap string work, so the figures measure the log.
 */
const template: Omit<CloudEvent, "id"> = {
  specversion: "1.0",
  source: "bench.orders",
  type: "order.created",
  time: "2024-01-01T00:00:00.000Z",
  datacontenttype: "application/json",
  data: {
    orderId: 1,
    customer: "c-42",
    total: 123.45,
    items: [
      { sku: "A-1", qty: 2 },
      { sku: "B-7", qty: 1 },
    ],
  },
};
const jsonTail = JSON.stringify(template).slice(1);

function makeEvent(bus: string, id: string): EventToAppend {
  const event = { ...template, id } as CloudEvent;
  const json = `{"id":${JSON.stringify(id)},${jsonTail}`;
  return { bus, event, json, sizeBytes: Buffer.byteLength(json), units: 1 };
}

async function runCase(durability: DurabilityMode, eventsPerAppend: number, ids: IdKind) {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-"));
  const storage = openSqliteStorage({ dataDir: dir, durability });
  const nextId = ids === "uuid-v4" ? randomUUID : () => uuidV7();
  let appends = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, caller) => {
      const bus = `bus-${caller % 4}`;
      while (performance.now() < deadline) {
        await storage.log.append(
          Array.from({ length: eventsPerAppend }, () => makeEvent(bus, nextId())),
        );
        appends += 1;
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  const { commits } = storage.log.stats();
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    durability,
    eventsPerAppend,
    ids,
    appendsPerS: Math.round(appends / elapsedS),
    eventsPerS: Math.round((appends * eventsPerAppend) / elapsedS),
    eventsPerCommit: Math.round((appends * eventsPerAppend) / commits),
  };
}

const rows = [];
for (const durability of ["fsync", "fsync-wal-only"] as const) {
  for (const eventsPerAppend of [1, 10]) {
    for (const ids of ["uuid-v4", "uuid-v7"] as const)
      rows.push(await runCase(durability, eventsPerAppend, ids));
  }
}
console.log(
  `log append, ${CALLERS} concurrent callers, ${SECONDS} s per case, fresh database each, node ${process.version}`,
);
console.table(rows);
