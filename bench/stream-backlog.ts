/**
 * The backlog of bench/stream.ts: events of an exact size appended to the bus `default` of a
 * data directory before the server starts (as bench/deliver.ts preloads its log).
 */
import { measureEvent } from "../src/events/sizing.js";
import { uuidV7 } from "../src/events/uuid-v7.js";
import { openSqliteStorage } from "../src/log/sqlite/open-sqlite-storage.js";
import { createPublishMeter } from "../src/metering/publish-meter.js";
import { silentLogger, type CloudEvent, type EventToAppend } from "../src/types.js";

/** Bytes per append while preloading the log. */
const PRELOAD_BATCH_BYTES = 2_097_152;

/** Events whose structured JSON is exactly `bytes` bytes long (fixed-width fields). */
function eventFactory(bytes: number): (seq: number) => CloudEvent {
  const time = new Date().toISOString();
  const make = (seq: number, padding: string): CloudEvent => ({
    specversion: "1.0",
    id: uuidV7(),
    source: "bench.stream",
    type: "bench.stream.event",
    time,
    datacontenttype: "application/json",
    data: { seq: String(seq).padStart(10, "0"), padding },
  });
  const padding = "x".repeat(bytes - Buffer.byteLength(JSON.stringify(make(0, "")), "utf8"));
  return (seq) => make(seq, padding);
}

/**
 * Appends `count` events of `bytes` bytes to the bus `default` of the log in `dataDir`, then
 * moves the dispatcher's checkpoint past them and counts them into usage, as the server would
 * have done had they been published through it earlier. Otherwise the server's first seconds
 * would go to routing (no rules: nothing to deliver) and metering the backlog on the main
 * thread, beside the streams being measured.
 */
export async function preloadBacklog(dataDir: string, count: number, bytes: number): Promise<void> {
  const make = eventFactory(bytes);
  const perAppend = Math.max(1, Math.min(2_000, Math.floor(PRELOAD_BATCH_BYTES / bytes)));
  const storage = openSqliteStorage({ dataDir, durability: "fsync-wal-only" });
  try {
    for (let start = 0; start < count; start += perAppend) {
      const batch: EventToAppend[] = [];
      for (let i = start; i < Math.min(count, start + perAppend); i++)
        batch.push(measureEvent("default", make(i)));
      await storage.log.append(batch);
    }
    storage.deliveries.commitDispatch("default", await storage.log.lastOffset("default"), []);
    const meter = createPublishMeter({
      log: storage.log,
      usage: storage.usage,
      listBuses: () => ["default"],
      logger: silentLogger,
    });
    await meter.catchUp();
    await meter.close();
  } finally {
    await storage.close();
  }
}
