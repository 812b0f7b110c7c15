/**
 * The RabbitMQ sink: publishes each event to an exchange on a confirm channel and confirms a
 * batch only once the broker has confirmed every message of it (publisher confirms), with
 * `mandatory` set so that a message no queue would take comes back instead of vanishing.
 */
import type { ChannelModel, ConfirmChannel, Options } from "amqplib";
import { SinkError, type ConnectorContext, type Sink, type SinkDefinition } from "../connector.js";
import type { CloudEvent } from "../../src/types.js";
import { AMQP_REPLY_CODES, amqpReplyCode, isPermanentRefusal } from "./amqp-errors.js";
import { closeQuietly, DEFAULT_RABBITMQ_URL, openConnection } from "./open-connection.js";

/** The RabbitMQ sink's configuration. */
export interface RabbitmqSinkConfig {
  /** AMQP URL, credentials and vhost included (default `amqp://guest:guest@127.0.0.1:5672`). */
  url?: string;
  /** The exchange to publish to; `""` is the default exchange, which routes by queue name. */
  exchange: string;
  /** Routing key of every message (default `""`). */
  routingKey?: string;
  /** `cloudevent` (default): the structured CloudEvent JSON; `data`: only `event.data` as JSON. */
  format?: "cloudevent" | "data";
  /** Delivery mode 2, so that durable queues keep the messages across a broker restart (default true). */
  persistent?: boolean;
  /** Unroutable messages come back and fail the batch permanently (default true); false lets the broker drop them. */
  mandatory?: boolean;
  /** Connecting and waiting for the confirms of one batch, each (default 10,000 ms). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The most bytes an AMQP short string (message id, type) holds. */
const MAX_SHORT_STRING_BYTES = 255;

/** One confirm channel and what its events said during the current write. */
interface ChannelState {
  channel: ConfirmChannel;
  /** Set when the broker closed the channel (its code says why). */
  closeError?: Error;
  closed: boolean;
  /** Messages the broker returned as unroutable during the current write. */
  returned: number;
}

export const rabbitmqSink: SinkDefinition<RabbitmqSinkConfig> = {
  name: "rabbitmq",
  kind: "sink",
  description: "Publishes each event to a RabbitMQ exchange with publisher confirms",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["exchange"],
    properties: {
      url: {
        type: "string",
        pattern: "^amqps?://",
        description: `AMQP URL (default ${DEFAULT_RABBITMQ_URL})`,
      },
      exchange: {
        type: "string",
        maxLength: 255,
        description: 'Exchange to publish to; "" is the default exchange',
      },
      routingKey: {
        type: "string",
        maxLength: 255,
        description: 'Routing key of every message (default "")',
      },
      format: {
        type: "string",
        enum: ["cloudevent", "data"],
        description:
          "cloudevent (default): structured CloudEvent JSON; data: only event.data as JSON",
      },
      persistent: { type: "boolean", description: "Publish with delivery mode 2 (default true)" },
      mandatory: {
        type: "boolean",
        description: "Fail a batch whose messages no queue takes (default true)",
      },
      timeoutMs: {
        type: "integer",
        minimum: 1,
        description: "Connect and confirm timeout, each (default 10000 ms)",
      },
    },
  },
  create: createRabbitmqSink,
};

function createRabbitmqSink(config: RabbitmqSinkConfig, context: ConnectorContext): Sink {
  const url = config.url ?? DEFAULT_RABBITMQ_URL;
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const format = config.format ?? "cloudevent";
  const routingKey = config.routingKey ?? "";
  const publishOptions = {
    persistent: config.persistent ?? true,
    mandatory: config.mandatory ?? true,
  };
  const where = `rabbitmq exchange "${config.exchange}"`;
  let connection: ChannelModel | undefined;
  let state: ChannelState | undefined;
  let closed = false;
  // Writes run one after another: returns and confirms are counted per channel, per write.
  let tail: Promise<void> = Promise.resolve();

  async function openChannel(): Promise<ChannelState> {
    if (state !== undefined && !state.closed) return state;
    if (connection === undefined) {
      let opened: ChannelModel;
      try {
        opened = await openConnection(url, {
          timeoutMs,
          name: `relaybus stream ${context.streamName} sink`,
        });
      } catch (error) {
        const permanent = isPermanentRefusal(amqpReplyCode(error));
        throw new SinkError(`rabbitmq: cannot connect: ${(error as Error).message}`, {
          retryable: !permanent,
          cause: error,
        });
      }
      opened.on("close", () => {
        if (connection === opened) connection = undefined;
      });
      opened.on("blocked", (reason: unknown) =>
        context.logger.warn("rabbitmq sink: the broker blocks publishing", { reason }),
      );
      connection = opened;
    }
    let channel: ConfirmChannel;
    try {
      channel = await connection.createConfirmChannel();
    } catch (error) {
      throw new SinkError(`rabbitmq: cannot open a channel: ${(error as Error).message}`, {
        retryable: true,
        cause: error,
      });
    }
    const opened: ChannelState = { channel, closed: false, returned: 0 };
    channel.on("error", (error: Error) => {
      opened.closeError = error;
    });
    channel.on("close", () => {
      opened.closed = true;
    });
    channel.on("return", () => {
      opened.returned += 1;
    });
    state = opened;
    return opened;
  }

  /** Drops a channel whose confirms can no longer be trusted; the next write opens another. */
  function discard(current: ChannelState): void {
    current.closed = true;
    void closeQuietly(current.channel);
  }

  async function publishBatch(events: readonly CloudEvent[]): Promise<void> {
    if (closed) throw new SinkError("rabbitmq: the sink is closed", { retryable: false });
    if (events.length === 0) return;
    const current = await openChannel();
    current.returned = 0;
    const confirms: Promise<void>[] = [];
    for (const event of events) {
      if (current.closed) break;
      const { body, contentType } = encodeBody(event, format);
      const options: Options.Publish = {
        ...publishOptions,
        contentType,
        timestamp: timestampSeconds(event, context.clock.nowMs()),
      };
      // AMQP short strings hold 255 bytes; a longer id or type stays in the body only.
      if (fitsShortString(event.id)) options.messageId = event.id;
      if (fitsShortString(event.type)) options.type = event.type;
      let settle: (error: unknown) => void = () => {};
      const confirmed = new Promise<void>(
        (resolve, reject) => (settle = (error) => (error ? reject(error as Error) : resolve())),
      );
      // Marked handled now: a failure below may end the write before anyone awaits it.
      confirmed.catch(() => {});
      confirms.push(confirmed);
      try {
        current.channel.publish(config.exchange, routingKey, body, options, (error: unknown) =>
          settle(error),
        );
      } catch (error) {
        // amqplib throws once the channel or connection is closing, after it queued this
        // message's confirm slot: the channel's confirms no longer line up, so it is dropped.
        discard(current);
        if (current.closeError !== undefined) throw channelFailure(current);
        throw new SinkError(`${where}: ${(error as Error).message}`, {
          retryable: true,
          cause: error,
        });
      }
    }
    const outcome = await settleWithin(confirms, timeoutMs, context.signal);
    if (outcome === "timeout" || outcome === "aborted") {
      discard(current);
      const why =
        outcome === "timeout" ? `no confirm within ${timeoutMs} ms` : "the stream stopped";
      throw new SinkError(`${where}: ${why}`, { retryable: true });
    }
    if (current.closed) throw channelFailure(current);
    const nacked = outcome.filter((result) => result.status === "rejected").length;
    if (current.returned > 0) {
      throw new SinkError(
        `${where}: ${current.returned} of ${events.length} messages matched no binding for routing key "${routingKey}" ` +
          `and came back (mandatory, reply ${AMQP_REPLY_CODES.NO_ROUTE} NO_ROUTE); bind a queue or set mandatory: false`,
        { retryable: false },
      );
    }
    if (nacked > 0) {
      // The broker refuses a message it cannot take now: a queue at its length limit with
      // overflow reject-publish, or a queue that is unavailable. Room may come later.
      throw new SinkError(
        `${where}: the broker refused (nacked) ${nacked} of ${events.length} messages`,
        { retryable: true },
      );
    }
  }

  function channelFailure(current: ChannelState): SinkError {
    const code = amqpReplyCode(current.closeError);
    if (current.closeError !== undefined) {
      return new SinkError(`${where}: ${current.closeError.message}`, {
        retryable: !isPermanentRefusal(code),
        cause: current.closeError,
      });
    }
    return new SinkError(`${where}: the connection to the broker was lost`, { retryable: true });
  }

  return {
    write(events) {
      const written = tail.then(() => publishBatch(events));
      tail = written.catch(() => {});
      return written;
    },
    async close() {
      closed = true;
      await tail;
      const current = state;
      state = undefined;
      if (current !== undefined && !current.closed) await closeQuietly(current.channel);
      const open = connection;
      connection = undefined;
      await closeQuietly(open);
    },
  };
}

/**
 * The message body: the structured CloudEvent, or in `data` format its data as JSON. An event
 * with binary data (`data_base64`) gives its bytes in `data` format, typed as the event says.
 */
function encodeBody(
  event: CloudEvent,
  format: "cloudevent" | "data",
): { body: Buffer; contentType: string } {
  if (format === "cloudevent")
    return {
      body: Buffer.from(JSON.stringify(event)),
      contentType: "application/cloudevents+json",
    };
  if (event.data === undefined && event.data_base64 !== undefined) {
    return {
      body: Buffer.from(event.data_base64, "base64"),
      contentType: event.datacontenttype ?? "application/octet-stream",
    };
  }
  return { body: Buffer.from(JSON.stringify(event.data ?? null)), contentType: "application/json" };
}

/** The AMQP timestamp (seconds): the event's `time` when it has a valid one, else now. */
function timestampSeconds(event: CloudEvent, nowMs: number): number {
  const timeMs = event.time === undefined ? Number.NaN : Date.parse(event.time);
  return Math.floor((Number.isFinite(timeMs) && timeMs >= 0 ? timeMs : nowMs) / 1000);
}

function fitsShortString(value: string): boolean {
  return Buffer.byteLength(value) <= MAX_SHORT_STRING_BYTES;
}

/** The settled confirms, or why waiting for them ended first. */
async function settleWithin(
  confirms: Promise<void>[],
  timeoutMs: number,
  signal: AbortSignal,
): Promise<PromiseSettledResult<void>[] | "timeout" | "aborted"> {
  if (signal.aborted) return "aborted";
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      Promise.allSettled(confirms),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      }),
      new Promise<"aborted">((resolve) => {
        onAbort = () => resolve("aborted");
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}
