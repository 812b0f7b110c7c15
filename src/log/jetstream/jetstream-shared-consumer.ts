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
import { createClaimHolders } from "./claim-holders.js";
import { consumerRemade, floorHeld, leaderChanged, lookAtConsumer, type ConsumerWatch } from "./stuck-consumer-watch.js";

/** How long a claim lasts without an ack or `extend`. */
export const DEFAULT_CLAIM_MS = 30_000;
/** Messages a node's flow of one bus holds ready (each claimed already, its claim time running). */
const BUFFERED_MESSAGES = 256;
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
  /** Whether this node leads the cluster: the leader repairs consumers stuck after a leader change. */
  isLeader?(): boolean;
}

export function createJetStreamSharedConsumer(options: JetStreamSharedConsumerOptions): SharedLogConsumer {
  const { connection, jsm, names, name } = options;
  const claimMs = options.claimMs ?? DEFAULT_CLAIM_MS;
  const js = connection.jetstream();
  const consumers = new Map<string, Promise<Consumer>>();
  let stopped = false;

  // A consumer whose leading server died can be left with claims it never hands out again
  // (nats-server before 2.10.26/2.11: "stuck consumer after leader change", nats-io/nats-server
  // #6387 and #6469): unacknowledged for good, never redelivered. The cluster's leading node
  // watches each consumer (`stuck-consumer-watch.ts` decides): once its server leader changed
  // and its acknowledged floor then stays put, below what the change can have touched, with
  // claims outstanding for three claim times and no live node holding the event after it, it
  // makes the consumer again from that floor. Everything after the floor is handed out again:
  // events finished meanwhile are delivered twice (at least once), none is lost.
  const holders = createClaimHolders({ connection, names, work: name, claimMs });
  const watched = new Map<string, ConsumerWatch>();
  const watch = async () => {
    if (stopped || options.isLeader?.() !== true) return;
    for (const bus of consumers.keys()) {
      const stream = names.logStream(bus);
      try {
        const info = await jsm.consumers.info(stream, name);
        const leader = info.cluster?.leader;
        const seen = watched.get(bus);
        const streamLastSeq = leaderChanged(seen, leader) ? (await jsm.streams.info(stream)).state.last_seq : undefined;
        const look = { nowMs: Date.now(), leader, floor: info.ack_floor.stream_seq, unacknowledged: info.num_ack_pending, streamLastSeq };
        const { watch: next, verdict } = lookAtConsumer(seen, look, 3 * claimMs);
        watched.set(bus, next);
        if (verdict.kind === "fine") continue;
        if (await holders.isHeld(bus, verdict.heldSeq)) {
          options.logger.info("cluster: a dispatch consumer's floor stays put after its server leader changed, but a node still works on the event after it", {
            bus,
            floor: look.floor,
          });
          watched.set(bus, floorHeld(next, Date.now()));
          continue;
        }
        options.logger.warn("cluster: a dispatch consumer is stuck after its server leader changed; making it again from its floor before the change", {
          bus,
          floor: look.floor,
          from: verdict.fromSeq,
          unacknowledged: look.unacknowledged,
        });
        await jsm.consumers.delete(stream, name);
        const made = await jsm.consumers.add(stream, consumerConfig(verdict.fromSeq));
        watched.set(bus, consumerRemade(verdict.fromSeq, made.cluster?.leader, Date.now()));
      } catch (error) {
        if (!isNatsNotFound(error)) options.logger.warn("cluster: could not check a dispatch consumer", { bus, error: String(error) });
      }
    }
  };
  let watching: Promise<void> = Promise.resolve();
  const watchTimer = setInterval(() => {
    watching = watching.then(watch);
  }, claimMs);
  watchTimer.unref();

  const consumerConfig = (fromSeq: number) => ({
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    ...(fromSeq <= 1 ? { deliver_policy: DeliverPolicy.All } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }),
    ack_wait: nanos(claimMs),
    max_ack_pending: MAX_UNACKNOWLEDGED,
    max_deliver: -1,
    description: `Relaybus ${name}, shared by the nodes`,
  });

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
          await jsm.consumers.add(stream, consumerConfig(1));
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
    lastMessageAtMs: number;
  }

  /**
   * A flow that has brought nothing for a claim time while the consumer has events waiting is
   * dead (its consumer was made again, or its pulls were lost with a server): it is closed, and
   * the next claim opens a new one.
   */
  const reviveIfDead = async (bus: string, puller: Puller): Promise<void> => {
    if (Date.now() - puller.lastMessageAtMs < claimMs) return;
    puller.lastMessageAtMs = Date.now();
    try {
      const info = await jsm.consumers.info(names.logStream(bus), name);
      if (info.num_pending === 0) return;
    } catch (error) {
      if (!isNatsNotFound(error)) return;
    }
    options.logger.warn("cluster: a dispatch flow brought nothing while events wait; opening it again", { bus });
    pullers.delete(bus);
    consumers.delete(bus);
    puller.waiting = undefined;
    void puller.messages.close();
  };
  const pullers = new Map<string, Promise<Puller>>();

  const pullerOf = (bus: string): Promise<Puller> => {
    let puller = pullers.get(bus);
    if (puller === undefined) {
      puller = (async () => {
        const consumer = await consumerOf(bus);
        const messages = await consumer.consume({ max_messages: BUFFERED_MESSAGES });
        return {
          messages,
          iterator: messages[Symbol.asyncIterator](),
          waiting: undefined,
          turn: Promise.resolve(),
          lastMessageAtMs: Date.now(),
        };
      })().catch((error: unknown) => {
        pullers.delete(bus);
        consumers.delete(bus); // made again next time, should the stream have been recreated
        throw error;
      });
      pullers.set(bus, puller);
    }
    return puller;
  };

  const toClaimed = (bus: string, message: JsMsg): ClaimedEvent => {
    holders.holding(bus, message.seq);
    return {
      event: storedEventOf(bus, message.seq, message.data, message.headers, Math.floor(message.info.timestampNanos / 1e6)),
      redeliveries: Math.max(0, message.info.redeliveryCount - 1),
      ack: () => {
        holders.released(bus, message.seq);
        message.ack();
      },
      extend: () => {
        holders.holding(bus, message.seq);
        message.working();
      },
    };
  };

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
    if (first === "late") {
      await reviveIfDead(bus, puller);
      return [];
    }
    puller.lastMessageAtMs = Date.now();
    puller.waiting = undefined;
    if (first.done === true) {
      pullers.delete(bus); // the flow ended (stopped, or the consumer went away)
      consumers.delete(bus);
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
      clearInterval(watchTimer);
      holders.close();
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
