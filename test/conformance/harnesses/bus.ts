/**
 * Conformance harness of the bus source and sink: a real Relaybus (its HTTP API, its SQLite
 * log) with a fresh bus, and the port the stream layer builds over that log.
 *
 * The sink's failures are the port's own refusals of real situations:
 * - Retryable: the log cannot store. Its file is capped at its current size (`max_page_count`,
 *   which fails a commit with SQLITE_FULL as a full disk does) and the last free space is
 *   filled with publishes to `default`, the smallest last, so that any further event is
 *   refused. The cap is lifted when the harness is next called.
 * - Permanent: the bus is deleted (through the API). This one must heal by itself after one
 *   refusal: the port asks `busExists` before it publishes, and the harness, having answered
 *   "no" once from the real registry, creates the bus again, as an operator would.
 */
import {
  SinkError,
  type SinkDefinition,
  type SourceDefinition,
} from "../../../connectors/index.js";
import { busSink, busSource } from "../../../connectors/bus/index.js";
import { DEFAULT_CONFIG } from "../../../src/config/defaults.js";
import type { SqliteStorage } from "../../../src/log/sqlite/index.js";
import { createRelaybusPort } from "../../../src/streams/relaybus-port.js";
import type { CloudEvent } from "../../../src/types.js";
import { startTestService, type TestService } from "../../helpers/service.js";
import type { SinkHarness, SourceHarness } from "../connector-harness.js";

/** SQLite's largest page count: the cap lifted. */
const NO_CAP = 1_073_741_823;
const MOST_FILLERS = 5_000;

/** A running Relaybus with a fresh bus, and the port over its log. */
export async function startBusPlace() {
  const service = await startTestService({ config: { log: { durability: "fsync-wal-only" } } });
  const bus = `conformance-${Math.random().toString(36).slice(2, 10)}`;
  const created = await service.post("/v1/buses", { name: bus });
  if (created.status !== 201)
    throw new Error(`creating bus ${bus}: ${created.status} ${await created.text()}`);
  /** Set while the bus is deleted: the first "no" to the port brings it back. */
  let recreateAfterRefusal = false;
  const port = createRelaybusPort({
    log: service.storage.log,
    busExists: (name) => {
      const exists = service.registry.busExists(name);
      if (!exists && name === bus && recreateAfterRefusal) {
        recreateAfterRefusal = false;
        service.registry.createBus({ name: bus });
      }
      return exists;
    },
    limits: DEFAULT_CONFIG.limits,
  });
  return {
    service,
    bus,
    port,
    readBack: async (): Promise<CloudEvent[]> =>
      (await port.read(bus, 0, 100_000)).map((r) => r.event),
    async deleteBusOnce() {
      const deleted = await fetch(`${service.url}/v1/buses/${bus}`, { method: "DELETE" });
      if (deleted.status !== 204 && deleted.status !== 200)
        throw new Error(`deleting bus ${bus}: ${deleted.status}`);
      recreateAfterRefusal = true;
    },
  };
}

/** Caps the log file at its size and fills it until even the smallest event is refused. */
async function fillLog(
  service: TestService,
  port: ReturnType<typeof createRelaybusPort>,
): Promise<void> {
  const storage = service.storage as SqliteStorage;
  const pages = (await storage.logWriterPragma("page_count")) as number;
  await storage.logWriterPragma(`max_page_count = ${pages}`);
  let n = 0;
  for (const size of [16_000, 1_000, 0]) {
    for (let i = 0; ; i++) {
      if (i === MOST_FILLERS)
        throw new Error(`the capped log still took ${MOST_FILLERS} events of ${size} bytes`);
      const filler: CloudEvent = {
        specversion: "1.0",
        id: `f${n++}`,
        source: "f",
        type: "f",
        data: "x".repeat(size),
      };
      try {
        await port.publish("default", [filler]);
      } catch (error) {
        if (error instanceof SinkError && error.retryable) break;
        throw error;
      }
    }
  }
}

export const sinkHarness: SinkHarness = {
  definition: busSink as SinkDefinition<never>,
  async setUp() {
    const place = await startBusPlace();
    let capped = false;
    const heal = async () => {
      if (!capped) return;
      capped = false;
      await (place.service.storage as SqliteStorage).logWriterPragma(`max_page_count = ${NO_CAP}`);
    };
    return {
      config: { bus: place.bus },
      invalidConfig: { bus: "no spaces allowed", extra: true },
      relaybus: place.port,
      readBack: async () => {
        await heal();
        return place.readBack();
      },
      async failNext(retryable) {
        await heal();
        if (retryable) {
          capped = true;
          await fillLog(place.service, place.port);
        } else await place.deleteBusOnce();
      },
      close: async () => {
        await heal();
        await place.service.close();
      },
    };
  },
};

export const sourceHarness: SourceHarness = {
  definition: busSource as SourceDefinition<never>,
  async setUp() {
    const place = await startBusPlace();
    return {
      // The bus is fresh: oldest and newest differ only for a stream that restarts before it
      // confirmed anything, which the conformance test does (and newest would skip those).
      config: { bus: place.bus, startAt: "oldest" },
      invalidConfig: { bus: "", startAt: "latest", readAhead: 0 },
      relaybus: place.port,
      async produce(events) {
        const response = await place.service.post(`/v1/buses/${place.bus}/cloudevents`, events, {
          "content-type": "application/cloudevents-batch+json",
        });
        if (response.status !== 200)
          throw new Error(`publishing: ${response.status} ${await response.text()}`);
      },
      close: () => place.service.close(),
    };
  },
};
