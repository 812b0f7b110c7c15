/**
 * The bus source: reads a Relaybus bus's log in offset order and hands the events over
 * unchanged (they are CloudEvents already). Relaybus keeps its position: the offset of the
 * last event of each batch, saved once the sink confirmed that batch and all before it.
 */
import type { RelaybusPort, SourceDefinition, SourceContext } from "../connector.js";

/** Where a stream with no saved position starts. */
export const BUS_START_POSITIONS = ["oldest", "newest"] as const;
export type BusStartPosition = (typeof BUS_START_POSITIONS)[number];

export interface BusSourceConfig {
  bus: string;
  /** `newest` (default): events published from the stream's start on; `oldest`: all the bus still holds. */
  startAt?: BusStartPosition;
  /** Batches handed over and not yet confirmed, at most (default 2). */
  readAhead?: number;
}

export const DEFAULT_READ_AHEAD = 2;
/**
 * How long one wait for new events lasts when the bus is caught up (ms). The wait ends at
 * once on an append or an abort, so this only bounds how often a quiet bus is polled.
 */
const IDLE_WAIT_MS = 5_000;

/** The offset a saved position stands for; throws on one this source did not write. */
function parsePosition(position: string, bus: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(position)) {
    throw new Error(
      `bus source ${bus}: saved position ${JSON.stringify(position)} is not an offset`,
    );
  }
  return Number(position);
}

async function startOffset(config: BusSourceConfig, context: SourceContext): Promise<number> {
  if (context.position !== undefined) return parsePosition(context.position, config.bus);
  return (config.startAt ?? "newest") === "oldest"
    ? 0
    : await context.relaybus.lastOffset(config.bus);
}

export const busSource: SourceDefinition<BusSourceConfig> = {
  name: "bus",
  kind: "source",
  description: "Reads a Relaybus bus in offset order; Relaybus keeps the stream's position",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["bus"],
    properties: {
      bus: { type: "string", pattern: "^[A-Za-z0-9._-]{1,64}$", description: "The bus to read." },
      startAt: {
        enum: [...BUS_START_POSITIONS],
        description:
          "Where a stream with no saved position starts: newest (default, events published from then on) or oldest (every event the bus still holds).",
      },
      readAhead: {
        type: "integer",
        minimum: 1,
        maximum: 64,
        description: `Most batches handed over before the first of them is confirmed (default ${DEFAULT_READ_AHEAD}).`,
      },
    },
  },
  create(config, context) {
    const { relaybus } = context;
    const readAhead = config.readAhead ?? DEFAULT_READ_AHEAD;
    /** The offset of the last event handed over; undefined until run() knows where it starts. */
    let handedOver: number | undefined;

    return {
      async run(handle) {
        assertBusExists(relaybus, config.bus);
        let after = await startOffset(config, context);
        handedOver = after;
        if (context.position === undefined && after > 0) {
          // "newest" is a moment: saved at once, so that a stream stopped before its first
          // batch still starts there, not at a later newest that skips what came between.
          await handle({ events: [], position: String(after) });
        }
        const inFlight = new Set<Promise<void>>();
        let failure: { error: unknown } | undefined;
        // Ends every wait when the stream aborts or a batch is refused, whichever comes first.
        const local = new AbortController();
        const { signal } = local;
        const abortLocal = () => local.abort();
        context.signal.addEventListener("abort", abortLocal, { once: true });
        if (context.signal.aborted) local.abort();
        const stopped = aborted(signal);

        try {
          while (!signal.aborted) {
            if (inFlight.size >= readAhead) {
              await Promise.race([...inFlight, stopped]);
              continue;
            }
            const records = await relaybus.read(config.bus, after, context.maxBatchEvents);
            if (records.length === 0) {
              await relaybus.waitForEvents(config.bus, after, signal, IDLE_WAIT_MS);
              assertBusExists(relaybus, config.bus);
              continue;
            }
            const first = records[0] as { offset: number };
            if (first.offset > after + 1 && after > 0) {
              context.logger.warn(
                "bus source: events were pruned by retention before the stream read them",
                {
                  bus: config.bus,
                  stream: context.streamName,
                  fromOffset: after + 1,
                  toOffset: first.offset - 1,
                },
              );
            }
            // A short batch waits up to maxBatchWaitMs for more, so that a trickle is not written
            // one event at a time. Real time, as the port's wait runs on real timers.
            const deadline = performance.now() + context.maxBatchWaitMs;
            while (records.length < context.maxBatchEvents && !signal.aborted) {
              const left = deadline - performance.now();
              if (left <= 0) break;
              const last = (records[records.length - 1] as { offset: number }).offset;
              await relaybus.waitForEvents(config.bus, last, signal, left);
              const more = await relaybus.read(
                config.bus,
                last,
                context.maxBatchEvents - records.length,
              );
              records.push(...more);
            }
            if (signal.aborted) break;
            after = (records[records.length - 1] as { offset: number }).offset;
            handedOver = after;
            const confirmed = handle({
              events: records.map((r) => r.event),
              sizesBytes: records.map((r) => r.sizeBytes),
              position: String(after),
            }).then(
              () => void inFlight.delete(confirmed),
              (error: unknown) => {
                inFlight.delete(confirmed);
                failure ??= { error };
                local.abort();
              },
            );
            inFlight.add(confirmed);
          }
        } finally {
          context.signal.removeEventListener("abort", abortLocal);
          local.abort();
        }
        // A refused batch while running means the stream is stopping or failing: end this run;
        // the next one starts from the position saved before that batch (at least once).
        if (failure !== undefined && !context.signal.aborted) throw failure.error;
      },
      async backlog() {
        if (handedOver === undefined) return undefined;
        return Math.max(0, (await relaybus.lastOffset(config.bus)) - handedOver);
      },
      async close() {},
    };
  },
};

function assertBusExists(relaybus: RelaybusPort, bus: string): void {
  if (!relaybus.busExists(bus))
    throw new Error(`bus source: bus ${JSON.stringify(bus)} does not exist`);
}

/** Resolves when `signal` aborts (never rejects). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
