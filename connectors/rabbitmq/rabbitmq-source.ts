/**
 * The RabbitMQ source: consumes a queue with manual acknowledgements, hands the messages over
 * in batches, and acknowledges a batch only once the stream confirmed it. Whatever was not
 * acknowledged when the channel closes (a stop, a failed batch, a lost connection) RabbitMQ
 * puts back at its place in the queue, so the next run reads it again, in order.
 */
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import type { Source, SourceBatch, SourceContext, SourceDefinition } from "../connector.js";
import { amqpReplyCode, AMQP_REPLY_CODES } from "./amqp-errors.js";
import { messageToEvent } from "./message-to-event.js";
import { closeQuietly, DEFAULT_RABBITMQ_URL, openConnection } from "./open-connection.js";

/** The RabbitMQ source's configuration. */
export interface RabbitmqSourceConfig {
  /** AMQP URL, credentials and vhost included (default `amqp://guest:guest@127.0.0.1:5672`). */
  url?: string;
  /** The queue to consume. */
  queue: string;
  /** Most unacknowledged messages the broker sends ahead (default twice `maxBatchEvents`, at most 65,535). */
  prefetch?: number;
  /** Declare the queue as durable if it does not exist (default false: it must exist). */
  declare?: boolean;
}

/** AMQP's prefetch count is an unsigned 16-bit number. */
const MAX_PREFETCH = 65_535;
const CONNECT_TIMEOUT_MS = 10_000;

export const rabbitmqSource: SourceDefinition<RabbitmqSourceConfig> = {
  name: "rabbitmq",
  kind: "source",
  description: "Consumes a RabbitMQ queue, acknowledging each batch once the stream confirmed it",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["queue"],
    properties: {
      url: {
        type: "string",
        pattern: "^amqps?://",
        description: `AMQP URL (default ${DEFAULT_RABBITMQ_URL})`,
      },
      queue: { type: "string", minLength: 1, maxLength: 255, description: "Queue to consume" },
      prefetch: {
        type: "integer",
        minimum: 1,
        maximum: MAX_PREFETCH,
        description: "Unacknowledged messages the broker sends ahead (default 2 x maxBatchEvents)",
      },
      declare: {
        type: "boolean",
        description: "Declare the queue, durable, if missing (default false: it must exist)",
      },
    },
  },
  create: createRabbitmqSource,
};

/** A delivered message waiting to be handed over, with when it arrived (`performance.now()` ms). */
interface Waiting {
  message: ConsumeMessage;
  arrivedMs: number;
}

function createRabbitmqSource(config: RabbitmqSourceConfig, context: SourceContext): Source {
  const url = config.url ?? DEFAULT_RABBITMQ_URL;
  const queue = config.queue;
  const prefetch =
    config.prefetch ?? Math.min(MAX_PREFETCH, Math.max(1, context.maxBatchEvents * 2));
  const where = `rabbitmq queue "${queue}"`;
  let connection: ChannelModel | undefined;
  let backlogChannel: Promise<Channel> | undefined;
  /** Delivered, not handed over yet: counted in the backlog besides the broker's ready messages. */
  let waiting: Waiting[] = [];

  async function consume(
    current: ChannelModel,
    handle: (batch: SourceBatch) => Promise<void>,
  ): Promise<void> {
    const { signal, maxBatchEvents, maxBatchWaitMs } = context;
    const channel = await current.createChannel();
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const poke = () => wake?.();
    /** Sleeps until a message arrives, the channel fails, the run aborts, or `ms` passed. */
    const nap = (ms?: number) =>
      new Promise<void>((resolve) => {
        const timer = ms === undefined ? undefined : setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    channel.on("error", (error: Error) => {
      failure ??= error;
      poke();
    });
    channel.on("close", () => {
      failure ??= new Error(`${where}: the connection to the broker was lost`);
      poke();
    });
    /** Set when `handle` rejected a batch. */
    let refusal: { error: unknown } | undefined;
    signal.addEventListener("abort", poke);
    try {
      await checkQueue(channel);
      await channel.prefetch(prefetch);
      await channel.consume(
        queue,
        (message) => {
          if (message === null) {
            failure ??= new Error(`${where}: the broker cancelled the consumer (queue deleted?)`);
          } else {
            waiting.push({ message, arrivedMs: performance.now() });
          }
          poke();
        },
        { noAck: false },
      );
      for (;;) {
        if (signal.aborted) return;
        // A batch the stream did not take fails the run: nothing after it may be acknowledged.
        if (refusal !== undefined) throw refusal.error;
        if (failure !== undefined) throw failure;
        const first = waiting[0];
        if (first === undefined) {
          await nap();
          continue;
        }
        // Real time, not context.clock: this is how long events sit here, not a schedule.
        const holdMs = first.arrivedMs + maxBatchWaitMs - performance.now();
        if (waiting.length < maxBatchEvents && holdMs > 0) {
          await nap(holdMs);
          continue;
        }
        const batch = waiting.slice(0, maxBatchEvents);
        waiting = waiting.slice(batch.length);
        const last = batch[batch.length - 1]!;
        // Not awaited: the stream may take the next batch while the sink writes this one
        // (read-ahead), and the prefetch bounds how many are out. A batch still in the sink
        // when the run stops is not acknowledged, so the broker hands it over again.
        handle({ events: batch.map((w) => messageToEvent(w.message, queue)) }).then(
          () => {
            if (refusal !== undefined || failure !== undefined) return;
            try {
              // Batches settle in the order they were handed over, so one ack of everything up
              // to this batch's last message acknowledges only batches the stream confirmed.
              channel.ack(last.message, true);
            } catch (error) {
              // The channel is closing: the batch comes again on the next run (at least once).
              failure ??= error as Error;
              poke();
            }
          },
          (error: unknown) => {
            refusal ??= { error };
            poke();
          },
        );
      }
    } finally {
      signal.removeEventListener("abort", poke);
      waiting = [];
      // Closing the channel hands every unacknowledged message back to the queue.
      await closeQuietly(channel);
    }
  }

  async function checkQueue(channel: Channel): Promise<void> {
    try {
      if (config.declare === true) await channel.assertQueue(queue, { durable: true });
      else await channel.checkQueue(queue);
    } catch (error) {
      if (amqpReplyCode(error) === AMQP_REPLY_CODES.NOT_FOUND) {
        throw new Error(`${where} does not exist: declare it, or set declare: true`, {
          cause: error,
        });
      }
      throw new Error(`${where}: ${(error as Error).message}`, { cause: error });
    }
  }

  return {
    async run(handle) {
      if (context.signal.aborted) return;
      const opened = await openConnection(url, {
        timeoutMs: CONNECT_TIMEOUT_MS,
        name: `relaybus stream ${context.streamName} source`,
      });
      connection = opened;
      try {
        await consume(opened, handle);
      } finally {
        connection = undefined;
        backlogChannel = undefined;
        await closeQuietly(opened);
      }
    },
    async backlog() {
      const current = connection;
      if (current === undefined) return undefined;
      try {
        // A channel of its own: checking a queue that vanished closes the channel that asked.
        backlogChannel ??= current.createChannel().then((channel) => {
          channel.on("error", () => {});
          channel.on("close", () => {
            backlogChannel = undefined;
          });
          return channel;
        });
        const { messageCount } = await (await backlogChannel).checkQueue(queue);
        return messageCount + waiting.length;
      } catch {
        backlogChannel = undefined;
        return undefined;
      }
    },
    async close() {
      const open = connection;
      connection = undefined;
      backlogChannel = undefined;
      await closeQuietly(open);
    },
  };
}
