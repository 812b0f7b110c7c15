/**
 * The NATS sink: publishes each event to a subject that a JetStream stream captures, and
 * confirms a batch once the stream acknowledged every event of it. Each message carries the
 * event id as `Nats-Msg-Id`, so a batch retried after a partial write is stored once (within
 * the stream's duplicate window, two minutes unless the stream says otherwise).
 */
import { headers, type MsgHdrs, type PubAck } from "nats";
import { SinkError, type SinkDefinition } from "../connector.js";
import type { CloudEvent } from "../../src/types.js";
import { binaryModeHeaders } from "./binary-mode.js";
import {
  NATS_CONNECTION_SCHEMA_PROPERTIES,
  NATS_CONNECTION_SCHEMA_RULES,
  type NatsConnectionConfig,
} from "./connection.js";
import { openSinkConnection, type SinkConnection } from "./sink-connection.js";
import { classifyNatsSinkError } from "./sink-errors.js";

/** What the sink sends: the whole event (structured mode) or only its data (binary mode). */
export const NATS_SINK_FORMATS = ["cloudevent", "data"] as const;
export type NatsSinkFormat = (typeof NATS_SINK_FORMATS)[number];

export interface NatsSinkConfig extends NatsConnectionConfig {
  /** The subject to publish to; a JetStream stream must capture it. */
  subject: string;
  /** Default `cloudevent`. */
  format?: NatsSinkFormat;
  /** How long to wait for the stream's acknowledgement of one event, and to connect (default 5,000 ms). */
  timeoutMs?: number;
}

/** Default of {@link NatsSinkConfig.timeoutMs}. */
export const DEFAULT_NATS_SINK_TIMEOUT_MS = 5_000;

/**
 * Publishes sent before the oldest one is acknowledged. The server stores one connection's
 * messages in the order it sent them, so a window keeps the order while hiding round trips;
 * it is bounded so that a stream that stopped answering does not gather a whole batch.
 */
const MAX_IN_FLIGHT_PUBLISHES = 64;

function bodyOf(event: CloudEvent, format: NatsSinkFormat): string | Uint8Array {
  if (format === "cloudevent") return JSON.stringify(event);
  if (event.data !== undefined) return JSON.stringify(event.data);
  return event.data_base64 === undefined ? "" : Buffer.from(event.data_base64, "base64");
}

function headersOf(event: CloudEvent, format: NatsSinkFormat): MsgHdrs {
  const result = headers();
  if (format === "cloudevent") {
    result.set("content-type", "application/cloudevents+json");
  } else {
    for (const [name, value] of binaryModeHeaders(event)) result.set(name, value);
  }
  return result;
}

export const natsSink: SinkDefinition<NatsSinkConfig> = {
  name: "nats",
  kind: "sink",
  description: "Publishes each event to a NATS JetStream subject, deduplicated on the event id",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["subject"],
    properties: {
      ...NATS_CONNECTION_SCHEMA_PROPERTIES,
      subject: {
        type: "string",
        // A concrete subject: tokens separated by dots, no wildcards, no whitespace.
        pattern: "^[^.*>\\s]+(\\.[^.*>\\s]+)*$",
        description: "the subject to publish to; a JetStream stream must capture it",
      },
      format: {
        enum: [...NATS_SINK_FORMATS],
        description:
          'what each message holds: "cloudevent" (the structured JSON event, the default) or "data" (event.data as JSON, the other attributes in ce- headers)',
      },
      timeoutMs: {
        type: "integer",
        minimum: 1,
        description: "wait for each acknowledgement and for connecting, in ms (default 5000)",
      },
    },
    ...NATS_CONNECTION_SCHEMA_RULES,
  },
  create(config, context) {
    const format = config.format ?? "cloudevent";
    const timeoutMs = config.timeoutMs ?? DEFAULT_NATS_SINK_TIMEOUT_MS;
    let connecting: Promise<SinkConnection> | undefined;
    let closing: Promise<void> | undefined;

    /** Connects on the first write; a failed attempt is forgotten so that the next write tries again. */
    function connection(): Promise<SinkConnection> {
      connecting ??= openSinkConnection(
        config,
        `relaybus sink ${context.streamName}`,
        timeoutMs,
      ).catch((error: unknown) => {
        connecting = undefined;
        throw classifyNatsSinkError(error, config.subject);
      });
      return connecting;
    }

    const stopped = new Promise<void>((resolve) => {
      if (context.signal.aborted) resolve();
      else context.signal.addEventListener("abort", () => resolve(), { once: true });
    });

    /** Resolves once `ack` did; a retryable error if the connection drops or the stream stops first. */
    async function acknowledged(ack: Promise<PubAck>, interrupted: Promise<string>): Promise<void> {
      const outcome = await Promise.race([ack.then(() => undefined), interrupted]);
      if (outcome !== undefined) {
        throw new SinkError(`nats subject ${config.subject}: ${outcome}`, { retryable: true });
      }
    }

    return {
      async write(events) {
        if (events.length === 0) return;
        if (closing !== undefined) {
          throw new SinkError("nats sink: write after close", { retryable: false });
        }
        const { js, nextDrop, waitConnected } = await connection();
        if (!(await waitConnected(timeoutMs, context.signal))) {
          throw new SinkError(
            `nats subject ${config.subject}: not connected to NATS within ${timeoutMs} ms (reconnecting)`,
            { retryable: true },
          );
        }
        const interrupted = Promise.race([
          nextDrop().then(() => "the connection to NATS dropped before JetStream acknowledged"),
          stopped.then(() => "the stream stopped before JetStream acknowledged"),
        ]);
        const acks: Array<Promise<PubAck>> = [];
        try {
          for (const [index, event] of events.entries()) {
            const oldest = acks[index - MAX_IN_FLIGHT_PUBLISHES];
            if (oldest !== undefined) await acknowledged(oldest, interrupted);
            // publish() sends before its first await, so messages leave in this order.
            const ack = js.publish(config.subject, bodyOf(event, format), {
              msgID: event.id,
              headers: headersOf(event, format),
              timeout: timeoutMs,
            });
            // A later ack may fail while an earlier one is awaited; the earliest failure is reported.
            ack.catch(() => {});
            acks.push(ack);
          }
          for (const ack of acks.slice(-MAX_IN_FLIGHT_PUBLISHES)) {
            await acknowledged(ack, interrupted);
          }
        } catch (error) {
          throw classifyNatsSinkError(error, config.subject);
        }
      },
      close() {
        closing ??= (async () => {
          const pending = connecting;
          if (pending === undefined) return;
          const open = await pending.catch(() => undefined);
          // drain() flushes what was sent and waits for the server; it throws once closed.
          await open?.nc.drain().catch(() => {});
        })();
        return closing;
      },
    };
  },
};
