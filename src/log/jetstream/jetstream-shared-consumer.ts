/**
 * Shared work over the bus logs on JetStream: one durable pull consumer per bus stream and
 * work name, which every node pulls from. JetStream hands each message to one puller at a
 * time and hands it out again once its ack wait passes without an ack: the claim.
 */
import { setImmediate } from "node:timers/promises";
import {
  AckPolicy,
  DeliverPolicy,
  nanos,
  type Consumer,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
} from "nats";
import type { Logger } from "../../types.js";
import type { ClaimedEvent, SharedLogConsumer } from "../shared-log-consumer.js";
import { storedEventOf } from "./jetstream-event.js";
import type { JetStreamNames } from "./jetstream-names.js";
import { isNatsNotFound } from "./nats-errors.js";

/** How long a claim lasts without an ack or `extend`. */
export const DEFAULT_CLAIM_MS = 30_000;
/** Messages a node's flow of one bus holds ready (each claimed already, its claim time running). */
const BUFFERED_MESSAGES = 500;
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

  /**
   * The bus's message flow: a `consume()` keeps messages coming as they are stored (a fetch
   * for a batch would wait for the whole batch or its expiry: ~2 s per delivery at low
   * load). Claims of one bus take turns on it.
   */
  interface Puller {
    messages: ConsumerMessages;
    iterator: AsyncIterator<JsMsg>;
    /** A `next()` asked for by a claim that gave up waiting: the next claim takes it. */
    waiting: Promise<IteratorResult<JsMsg>> | undefined;
    turn: Promise<unknown>;
  }
  const pullers = new Map<string, Promise<Puller>>();

  const pullerOf = (bus: string): Promise<Puller> => {
    let puller = pullers.get(bus);
    if (puller === undefined) {
      puller = (async () => {
        const consumer = await consumerOf(bus);
        const messages = await consumer.consume({ max_messages: BUFFERED_MESSAGES });
        return { messages, iterator: messages[Symbol.asyncIterator](), waiting: undefined, turn: Promise.resolve() };
      })().catch((error: unknown) => {
        pullers.delete(bus);
        consumers.delete(bus); // made again next time, should the stream have been recreated
        throw error;
      });
      pullers.set(bus, puller);
    }
    return puller;
  };

  const toClaimed = (bus: string, message: JsMsg): ClaimedEvent => ({
    event: storedEventOf(bus, message.seq, message.data, message.headers, Math.floor(message.info.timestampNanos / 1e6)),
    redeliveries: Math.max(0, message.info.redeliveryCount - 1),
    ack: () => message.ack(),
    extend: () => message.working(),
  });

  /** Up to `maxEvents` messages: the first within `maxWaitMs`, then those already buffered. */
  const take = async (bus: string, puller: Puller, maxEvents: number, maxWaitMs: number): Promise<ClaimedEvent[]> => {
    puller.waiting ??= puller.iterator.next();
    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      puller.waiting,
      new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), maxWaitMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (first === "late") return [];
    puller.waiting = undefined;
    if (first.done === true) {
      pullers.delete(bus); // the flow ended (stopped, or the consumer went away)
      return [];
    }
    const claimed = [toClaimed(bus, first.value)];
    // Then what is buffered already: a message the iterator cannot hand over within this
    // turn of the event loop is not there yet, and its `next()` waits for the next claim.
    while (claimed.length < maxEvents) {
      puller.waiting ??= puller.iterator.next();
      const next = await Promise.race([puller.waiting, setImmediate().then(() => "none" as const)]);
      if (next === "none") break;
      puller.waiting = undefined;
      if (next.done === true) {
        pullers.delete(bus);
        break;
      }
      claimed.push(toClaimed(bus, next.value));
    }
    return claimed;
  };

  return {
    claimMs,
    async claim(bus, maxEvents, maxWaitMs) {
      if (stopped) return [];
      const puller = await pullerOf(bus);
      const claim = puller.turn.then(() => (stopped ? [] : take(bus, puller, maxEvents, maxWaitMs)));
      puller.turn = claim.catch(() => undefined);
      return claim;
    },
    stop() {
      stopped = true;
      for (const puller of pullers.values()) void puller.then((p) => p.messages.close()).catch(() => undefined);
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
