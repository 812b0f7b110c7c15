/**
 * The NATS source: reads a JetStream stream through a durable pull consumer and hands its
 * messages over in batches. JetStream keeps the position: a message is acknowledged only
 * once the stream confirmed its batch, and a batch that was not confirmed is negatively
 * acknowledged (or, if the stop could not wait for its answer, left to the ack wait), so the
 * consumer delivers it again, first, on the next run.
 */
import { connect, type JsMsg, type MsgHdrs, type NatsConnection } from "nats";
import type { SourceBatch, SourceDefinition } from "../connector.js";
import { createBatchReader } from "./batch-reader.js";
import {
  NATS_CONNECTION_SCHEMA_PROPERTIES,
  NATS_CONNECTION_SCHEMA_RULES,
  natsConnectionOptions,
  type NatsConnectionConfig,
} from "./connection.js";
import { defaultDurableName, ensureDurableConsumer } from "./durable-consumer.js";
import { natsMessageToCloudEvent } from "./event-mapping.js";
import { createMessageSettlement } from "./message-settlement.js";

/** Where a new durable consumer starts: the stream's first message, or the next one published. */
export const NATS_DELIVER_POLICIES = ["all", "new"] as const;
export type NatsDeliverPolicy = (typeof NATS_DELIVER_POLICIES)[number];

export interface NatsSourceConfig extends NatsConnectionConfig {
  /** The JetStream stream to read; it must exist. */
  stream: string;
  /** The durable consumer's name (default `relaybus-<stream name>`, other characters as `_`). */
  durable?: string;
  /** Only messages on subjects matching this (wildcards allowed); default: all of the stream. */
  filterSubject?: string;
  /** Where a new consumer starts (default `all`); an existing durable keeps its place. */
  deliverPolicy?: NatsDeliverPolicy;
  /** How long JetStream waits for an acknowledgement before delivering again (default 30,000 ms). */
  ackWaitMs?: number;
}

/** Default of {@link NatsSourceConfig.ackWaitMs} (JetStream's own default). */
export const DEFAULT_NATS_ACK_WAIT_MS = 30_000;

/** Batches handed over and not yet confirmed; more would only hold messages past their ack wait. */
const READ_AHEAD_BATCHES = 2;
/** How long a stopping run waits for the answers to batches it handed over (ms). */
const STOP_GRACE_MS = 1_000;
/**
 * How long one pull request stays open on the server (the client's minimum). Short, because
 * a stopping run waits one out before its naks (see createMessageSettlement); an idle
 * consumer sends one request per this period.
 */
const PULL_EXPIRES_MS = 1_000;
/** Slack for the pull request's trip to the server, on top of its expiry (ms). */
const PULL_EXPIRY_MARGIN_MS = 200;
/** Connecting, and each JetStream management request (ms). */
const REQUEST_TIMEOUT_MS = 5_000;

function* headerPairs(headers: MsgHdrs | undefined): Iterable<[string, string]> {
  if (headers === undefined) return;
  for (const key of headers.keys()) yield [key, headers.get(key)];
}

function toCloudEvent(message: JsMsg) {
  return natsMessageToCloudEvent({
    stream: message.info.stream,
    streamSequence: message.info.streamSequence,
    subject: message.subject,
    storedAtMs: Math.floor(message.info.timestampNanos / 1_000_000),
    headers: headerPairs(message.headers),
    body: message.data,
  });
}

export const natsSource: SourceDefinition<NatsSourceConfig> = {
  name: "nats",
  kind: "source",
  description:
    "Reads a NATS JetStream stream through a durable pull consumer, acknowledging what the sink confirmed",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["stream"],
    properties: {
      ...NATS_CONNECTION_SCHEMA_PROPERTIES,
      stream: {
        type: "string",
        pattern: "^[^.*>\\s/\\\\]+$",
        description: "the JetStream stream to read; it must exist",
      },
      durable: {
        type: "string",
        pattern: "^[A-Za-z0-9_-]+$",
        description:
          "the durable consumer's name (default: relaybus-<stream name>, other characters as _)",
      },
      filterSubject: {
        type: "string",
        pattern: "^\\S+$",
        description: "only subjects matching this, wildcards allowed (default: all)",
      },
      deliverPolicy: {
        enum: [...NATS_DELIVER_POLICIES],
        description:
          'where a new consumer starts: "all" (the default) or "new"; an existing durable keeps its place',
      },
      ackWaitMs: {
        type: "integer",
        minimum: 1,
        description:
          "how long JetStream waits for an ack before delivering again, in ms (default 30000)",
      },
    },
    ...NATS_CONNECTION_SCHEMA_RULES,
  },
  create(config, context) {
    const durable = config.durable ?? defaultDurableName(context.streamName);
    const maxBatchEvents = Math.max(1, context.maxBatchEvents);
    let connecting: Promise<NatsConnection> | undefined;
    let closing: Promise<void> | undefined;
    /** Messages handed over and not yet acked or nak'd: the stream counts them as its own. */
    let handedOverUnsettled = 0;

    function connection(): Promise<NatsConnection> {
      connecting ??= connect(
        natsConnectionOptions(config, `relaybus source ${context.streamName}`, REQUEST_TIMEOUT_MS),
      ).catch((error: unknown) => {
        connecting = undefined;
        throw error;
      });
      return connecting;
    }

    async function run(handle: (batch: SourceBatch) => Promise<void>): Promise<void> {
      const { signal } = context;
      if (signal.aborted) return;
      const nc = await connection();
      await ensureDurableConsumer(
        await nc.jetstreamManager({ timeout: REQUEST_TIMEOUT_MS }),
        {
          stream: config.stream,
          durable,
          filterSubject: config.filterSubject ?? "",
          deliverPolicy: config.deliverPolicy ?? "all",
          ackWaitMs: config.ackWaitMs ?? DEFAULT_NATS_ACK_WAIT_MS,
        },
        context.logger,
      );
      const consumer = await nc
        .jetstream({ timeout: REQUEST_TIMEOUT_MS })
        .consumers.get(config.stream, durable);
      // A deleted stream or consumer ends the run (the stream retries it), rather than waiting.
      const messages = await consumer.consume({
        max_messages: maxBatchEvents,
        expires: PULL_EXPIRES_MS,
        abort_on_missing_resource: true,
      });
      const reader = createBatchReader(messages[Symbol.asyncIterator]());

      // Reading stops when the stream aborts or a batch is refused.
      const stopReading = new AbortController();
      stopReading.signal.addEventListener("abort", () => messages.stop(), { once: true });
      const onAbort = () => stopReading.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      const readingStopped = new Promise<void>((resolve) =>
        stopReading.signal.addEventListener("abort", () => resolve(), { once: true }),
      );
      const settlement = createMessageSettlement();
      let refused: { error: unknown } | undefined;
      const inFlight = new Set<Promise<void>>();

      const handOver = (batch: JsMsg[]) => {
        handedOverUnsettled += batch.length;
        const settled: Promise<void> = new Promise<void>((resolve) =>
          resolve(handle({ events: batch.map(toCloudEvent) })),
        )
          .then(
            () => settlement.ack(batch),
            (error: unknown) => {
              refused ??= { error };
              stopReading.abort();
              settlement.nak(batch);
            },
          )
          .finally(() => {
            handedOverUnsettled -= batch.length;
            inFlight.delete(settled);
          });
        inFlight.add(settled);
      };

      let readError: { error: unknown } | undefined;
      try {
        while (!stopReading.signal.aborted) {
          if (inFlight.size >= READ_AHEAD_BATCHES) {
            await Promise.race([...inFlight, readingStopped]);
            continue;
          }
          const batch = await reader.nextBatch(
            maxBatchEvents,
            context.maxBatchWaitMs,
            stopReading.signal,
          );
          if (batch === undefined) break;
          handOver(batch);
        }
      } catch (error) {
        readError = { error };
      } finally {
        signal.removeEventListener("abort", onAbort);
        stopReading.abort();
        const unhanded = await reader.drain();
        // The last pull request stays open on the server until it expires, its subscription
        // gone. Naks wait it out (see createMessageSettlement), so that they bring the messages
        // back to the next run rather than to that request; a clean stop has none to send.
        const pullExpiredAt = Date.now() + PULL_EXPIRES_MS + PULL_EXPIRY_MARGIN_MS;
        await waitAtMost([...inFlight], STOP_GRACE_MS);
        if (unhanded.length > 0) settlement.nak(unhanded);
        if (settlement.holdsNaks() || inFlight.size > 0) await delay(pullExpiredAt - Date.now());
        settlement.releaseNaks();
      }
      if (readError !== undefined) throw readError.error;
      if (refused !== undefined && !signal.aborted) throw refused.error;
      if (!signal.aborted) {
        throw new Error(
          `nats source: consumer ${durable} on stream ${config.stream} stopped delivering`,
        );
      }
    }

    return {
      run,
      async backlog() {
        if (connecting === undefined || closing !== undefined) return undefined;
        try {
          const nc = await connecting;
          const jsm = await nc.jetstreamManager({ timeout: REQUEST_TIMEOUT_MS });
          const info = await jsm.consumers.info(config.stream, durable);
          // Waiting in the stream, plus delivered and unacknowledged but not handed over
          // (held by this client, or by an earlier run until their ack wait ends).
          return info.num_pending + Math.max(0, info.num_ack_pending - handedOverUnsettled);
        } catch {
          return undefined;
        }
      },
      close() {
        closing ??= (async () => {
          const nc = await connecting?.catch(() => undefined);
          // drain() sends the last acks and naks before closing; it throws once closed.
          await nc?.drain().catch(() => {});
        })();
        return closing;
      },
    };
  },
};

function delay(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when every promise settled, or after `timeoutMs`, whichever comes first. */
async function waitAtMost(promises: Array<Promise<unknown>>, timeoutMs: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(promises),
    new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}
