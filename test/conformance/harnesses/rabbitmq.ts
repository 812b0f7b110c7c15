/**
 * Conformance harnesses of the RabbitMQ connectors, against the local RabbitMQ.
 *
 * The sink publishes to a fresh exchange bound to a fresh queue, which `readBack` drains. Its
 * failures are the broker's own answers: for a retryable one the exchange routes to a queue
 * that is full (x-max-length 0, overflow reject-publish), so the broker nacks, as it does for
 * any queue at its limit, and room can come later; for a permanent one the queue is unbound,
 * so the message matches no binding and comes back (mandatory), which a retry cannot change.
 * The sink talks to the broker through a relay (test/helpers/amqp-relay.ts) that holds the
 * broker's answer to the failing publish until the binding is restored, so the sink's next
 * write finds the exchange routing again however soon it follows: without it, "fail once"
 * would race the sink's next publish.
 *
 * The source consumes a fresh queue that `produce` publishes into with confirms.
 */
import { randomBytes } from "node:crypto";
import { connect } from "amqplib";
import type { SinkDefinition, SourceDefinition } from "../../../connectors/index.js";
import { rabbitmqSink, rabbitmqSource } from "../../../connectors/rabbitmq/index.js";
import type { CloudEvent } from "../../../src/types.js";
import { createAmqpRelay } from "../../helpers/amqp-relay.js";
import { LOCAL_SERVICES, requireService } from "../../helpers/local-services.js";
import type { SinkHarness, SourceHarness } from "../connector-harness.js";

const BROKER_URL = LOCAL_SERVICES.rabbitmq.url;
const ROUTING_KEY = "events";

/** A unique name for this run's exchange or queue. */
function freshName(kind: string): string {
  return `relaybus-conformance-${kind}-${randomBytes(4).toString("hex")}`;
}

export const sinkHarness: SinkHarness = {
  definition: rabbitmqSink as SinkDefinition<never>,
  skipReason: () => requireService("rabbitmq"),
  async setUp() {
    const connection = await connect(BROKER_URL);
    const channel = await connection.createChannel();
    const exchange = freshName("sink");
    const queue = freshName("sink");
    const fullQueue = `${queue}-full`;
    await channel.assertExchange(exchange, "direct", { durable: false });
    await channel.assertQueue(queue, { durable: false });
    await channel.bindQueue(queue, exchange, ROUTING_KEY);
    await channel.assertQueue(fullQueue, {
      durable: false,
      arguments: { "x-max-length": 0, "x-overflow": "reject-publish" },
    });
    const relay = await createAmqpRelay(BROKER_URL);
    const held: CloudEvent[] = [];
    return {
      config: { url: relay.url, exchange, routingKey: ROUTING_KEY, timeoutMs: 5_000 },
      invalidConfig: { exchange: 5, format: "xml" },
      async readBack() {
        for (;;) {
          const message = await channel.get(queue, { noAck: true });
          if (message === false) return [...held];
          held.push(JSON.parse(message.content.toString("utf8")) as CloudEvent);
        }
      },
      async failNext(retryable) {
        await channel.unbindQueue(queue, exchange, ROUTING_KEY);
        if (retryable) await channel.bindQueue(fullQueue, exchange, ROUTING_KEY);
        relay.holdNextAnswer(async () => {
          if (retryable) await channel.unbindQueue(fullQueue, exchange, ROUTING_KEY);
          await channel.bindQueue(queue, exchange, ROUTING_KEY);
        });
      },
      async close() {
        try {
          await relay.close();
          await channel.deleteExchange(exchange);
          await channel.deleteQueue(queue);
          await channel.deleteQueue(fullQueue);
        } finally {
          await connection.close();
        }
      },
    };
  },
};

export const sourceHarness: SourceHarness = {
  definition: rabbitmqSource as SourceDefinition<never>,
  skipReason: () => requireService("rabbitmq"),
  async setUp() {
    const connection = await connect(BROKER_URL);
    const channel = await connection.createConfirmChannel();
    const queue = freshName("source");
    await channel.assertQueue(queue, { durable: false });
    const publish = async (
      bodies: readonly string[],
      options: (i: number) => { messageId?: string; contentType: string },
    ) => {
      bodies.forEach((body, i) => channel.sendToQueue(queue, Buffer.from(body), options(i)));
      await channel.waitForConfirms();
    };
    return {
      config: { url: BROKER_URL, queue },
      invalidConfig: { queue: "", prefetch: 0, extra: true },
      async produce(events) {
        await publish(
          events.map((event) => JSON.stringify(event)),
          (i) => ({ messageId: events[i]?.id, contentType: "application/cloudevents+json" }),
        );
      },
      // No message id: the source derives the ids from the messages themselves.
      async produceRaw(payloads) {
        await publish(
          payloads.map((payload) =>
            typeof payload === "string" ? payload : JSON.stringify(payload),
          ),
          (i) => ({
            contentType: typeof payloads[i] === "string" ? "text/plain" : "application/json",
          }),
        );
      },
      async close() {
        try {
          await channel.deleteQueue(queue);
        } finally {
          await connection.close();
        }
      },
    };
  },
};
