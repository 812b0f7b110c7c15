/**
 * Shared work over the bus logs on JetStream: one durable pull consumer per bus stream and
 * work name, which every node pulls from. JetStream hands each message to one puller at a
 * time and hands it out again once its ack wait passes without an ack: the claim.
 */
import { AckPolicy, DeliverPolicy, nanos, type Consumer, type JetStreamManager, type NatsConnection } from "nats";
import type { Logger } from "../../types.js";
import type { ClaimedEvent, SharedLogConsumer } from "../shared-log-consumer.js";
import { storedEventOf } from "./jetstream-event.js";
import type { JetStreamNames } from "./jetstream-names.js";
import { isNatsNotFound } from "./nats-errors.js";

/** How long a claim lasts without an ack or `extend`. */
export const DEFAULT_CLAIM_MS = 30_000;
/** Events claimed and not yet acknowledged per bus, across the cluster, at most. */
const MAX_UNACKNOWLEDGED = 50_000;

export interface JetStreamSharedConsumerOptions {
  connection: NatsConnection;
  jsm: JetStreamManager;
  names: JetStreamNames;
  /** The work's name, the durable consumer's name on each bus stream: `dispatch`. */
  name: string;
  logger: Logger;
  /** Makes the bus's stream if it has none yet (a bus that never had an event). */
  ensureStream(bus: string): Promise<void>;
  claimMs?: number;
}

export function createJetStreamSharedConsumer(options: JetStreamSharedConsumerOptions): SharedLogConsumer {
  const { connection, jsm, names, name } = options;
  const claimMs = options.claimMs ?? DEFAULT_CLAIM_MS;
  const js = connection.jetstream();
  const consumers = new Map<string, Promise<Consumer>>();
  /** Claims waiting for messages, ended by `stop`. */
  const fetching = new Set<{ close(): Promise<void | Error> }>();
  let stopped = false;

  /** The bus's durable consumer, made on first use (by whichever node comes first). */
  const consumerOf = (bus: string): Promise<Consumer> => {
    let consumer = consumers.get(bus);
    if (consumer === undefined) {
      consumer = (async () => {
        const stream = names.logStream(bus);
        await options.ensureStream(bus);
        try {
          const info = await jsm.consumers.info(stream, name);
          // Made with another claim time (the setting changed): take the current one.
          if (info.config.ack_wait !== nanos(claimMs)) {
            await jsm.consumers.update(stream, name, { ack_wait: nanos(claimMs) });
          }
        } catch (error) {
          if (!isNatsNotFound(error)) throw error;
          await jsm.consumers.add(stream, {
            durable_name: name,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            ack_wait: nanos(claimMs),
            max_ack_pending: MAX_UNACKNOWLEDGED,
            max_deliver: -1,
            description: `Relaybus ${name}, shared by the nodes`,
          });
        }
        return js.consumers.get(stream, name);
      })().catch((error: unknown) => {
        consumers.delete(bus);
        throw error;
      });
      consumers.set(bus, consumer);
    }
    return consumer;
  };

  return {
    claimMs,
    async claim(bus, maxEvents, maxWaitMs) {
      if (stopped) return [];
      const consumer = await consumerOf(bus);
      let messages;
      try {
        messages = await consumer.fetch({ max_messages: maxEvents, expires: Math.max(1_000, maxWaitMs) });
      } catch (error) {
        consumers.delete(bus); // made again next time, should the stream have been recreated
        throw error;
      }
      fetching.add(messages);
      const claimed: ClaimedEvent[] = [];
      try {
        for await (const message of messages) {
          claimed.push({
            event: storedEventOf(bus, message.seq, message.data, message.headers, Math.floor(message.info.timestampNanos / 1e6)),
            redeliveries: Math.max(0, message.info.redeliveryCount - 1),
            ack: () => message.ack(),
            extend: () => message.working(),
          });
        }
      } finally {
        fetching.delete(messages);
      }
      return claimed;
    },
    stop() {
      stopped = true;
      for (const messages of fetching) void messages.close();
    },
    async firstUnfinished(bus) {
      try {
        const info = await jsm.consumers.info(names.logStream(bus), name);
        return info.ack_floor.stream_seq + 1;
      } catch (error) {
        if (isNatsNotFound(error)) return 1;
        throw error;
      }
    },
  };
}
