/**
 * The port through which connectors use Relaybus's own buses: the bus source reads a bus's
 * log, the bus sink publishes to a bus. Publishing goes through the same checks as ingress
 * (CloudEvents attributes, size limit, bus exists), and the events are durable when it
 * resolves. The port is all a connector sees of the log.
 */
import { SinkError, type BusRecord, type RelaybusPort } from "../../connectors/index.js";
import type { RelaybusConfig } from "../config/defaults.js";
import { isRelaybusError } from "../errors.js";
import { parseCloudEvent } from "../events/cloud-event.js";
import { measureEvent } from "../events/sizing.js";
import type { LogEngine } from "../log/log-engine.js";
import type { CloudEvent, EventToAppend } from "../types.js";

/** What the port is built on. */
export interface RelaybusPortDeps {
  log: LogEngine;
  busExists(bus: string): boolean;
  limits: Pick<RelaybusConfig["limits"], "maxEventBytes">;
}

/** Creates the port over a log. It holds no resources of its own. */
export function createRelaybusPort(deps: RelaybusPortDeps): RelaybusPort {
  const { log, busExists, limits } = deps;

  const toAppend = (bus: string, events: readonly CloudEvent[]): EventToAppend[] =>
    events.map((event, i) => {
      let checked: CloudEvent;
      try {
        checked = parseCloudEvent(event, `events[${i}]`);
      } catch (error) {
        throw new SinkError(`bus ${bus}: ${(error as Error).message}`, { retryable: false, cause: error });
      }
      const measured = measureEvent(bus, checked);
      if (measured.sizeBytes > limits.maxEventBytes) {
        throw new SinkError(
          `bus ${bus}: events[${i}] is ${measured.sizeBytes} bytes as JSON, over the limit of ${limits.maxEventBytes}`,
          { retryable: false },
        );
      }
      return measured;
    });

  return {
    busExists,
    async publish(bus, events) {
      if (events.length === 0) return;
      if (!busExists(bus)) throw new SinkError(`bus ${JSON.stringify(bus)} does not exist`, { retryable: false });
      const appending = toAppend(bus, events);
      try {
        await log.append(appending);
      } catch (error) {
        // The log refuses when it cannot store (disk full, closing): a later try may succeed.
        const code = isRelaybusError(error) ? ` (${error.code})` : "";
        throw new SinkError(`bus ${bus}: the log refused the batch${code}: ${(error as Error).message}`, { retryable: true, cause: error });
      }
    },
    async read(bus, afterOffset, limit): Promise<BusRecord[]> {
      const stored = await log.read(bus, afterOffset, limit);
      return stored.map((s) => ({ offset: s.offset, event: s.event, sizeBytes: s.sizeBytes }));
    },
    lastOffset: (bus) => log.lastOffset(bus),
    waitForEvents(bus, afterOffset, signal, timeoutMs) {
      return new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        let settled = false;
        const finish = () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          unsubscribe();
          signal.removeEventListener("abort", finish);
          resolve();
        };
        const timer = setTimeout(finish, timeoutMs);
        const unsubscribe = log.onAppend((appended) => {
          if (appended === bus) finish();
        });
        signal.addEventListener("abort", finish, { once: true });
        // An append between the caller's read and this subscription would otherwise be missed.
        log.lastOffset(bus).then(
          (last) => {
            if (last > afterOffset) finish();
          },
          () => finish(),
        );
      });
    },
  };
}
