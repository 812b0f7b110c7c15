/**
 * {@link ParkedDeliveries} on JetStream: a work-queue stream `<PREFIX>_PARKED` (a message is
 * gone once acknowledged) and one durable pull consumer shared by the nodes. A delivery
 * claimed before it is due is handed back with a delay (`nak(ms)`), so that JetStream hands
 * it out again when it is due.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  nanos,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type JetStreamManager,
  type NatsConnection,
} from "nats";
import type { Clock } from "../../types.js";
import type { ClaimedDelivery, Delivery, ParkedDeliveries } from "../log-engine.js";
import { isNatsNotFound } from "./nats-errors.js";

const CONSUMER = "parked";
/** Parked deliveries claimed and not acknowledged, or handed back until due, at most. */
const MAX_UNACKNOWLEDGED = 1_000_000;

export interface JetStreamParkedDeliveriesOptions {
  connection: NatsConnection;
  jsm: JetStreamManager;
  /** `<PREFIX>_PARKED` */
  stream: string;
  /** `<prefix>.parked` */
  subject: string;
  replicas: number;
  claimMs: number;
  clock: Clock;
}

export async function openJetStreamParkedDeliveries(options: JetStreamParkedDeliveriesOptions): Promise<ParkedDeliveries> {
  const { connection, jsm, stream, subject, clock, claimMs } = options;
  const js = connection.jetstream();
  // Idempotent: the storage's start asks it again while a cluster just started elects its
  // leaders (open-jetstream-storage.ts).
  try {
    await jsm.streams.info(stream);
  } catch (error) {
    if (!isNatsNotFound(error)) throw error;
    await jsm.streams
      .add({
        name: stream,
        subjects: [subject],
        storage: StorageType.File,
        retention: RetentionPolicy.Workqueue,
        discard: DiscardPolicy.Old,
        num_replicas: options.replicas,
        duplicate_window: nanos(120_000),
        description: "Relaybus: deliveries retrying for long, parked for any node to take when due",
      })
      .catch(async (addError: unknown) => {
        await jsm.streams.info(stream).catch(() => {
          throw addError;
        });
      });
  }
  try {
    await jsm.consumers.info(stream, CONSUMER);
  } catch (error) {
    if (!isNatsNotFound(error)) throw error;
    await jsm.consumers
      .add(stream, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(claimMs),
        max_ack_pending: MAX_UNACKNOWLEDGED,
        max_deliver: -1,
      })
      .catch(async (addError: unknown) => {
        await jsm.consumers.info(stream, CONSUMER).catch(() => {
          throw addError;
        });
      });
  }
  const consumer: Consumer = await js.consumers.get(stream, CONSUMER);
  /** Claims waiting for messages, ended by `stop`. */
  const fetching = new Set<{ close(): Promise<void | Error> }>();
  let stopped = false;

  return {
    claimMs,
    async park(deliveries) {
      await Promise.all(
        deliveries.map((delivery) =>
          js.publish(subject, Buffer.from(JSON.stringify(delivery), "utf8"), {
            // A retry of the same park stores it once; a later park (more attempts) is new.
            msgID: `${delivery.id}#${delivery.attempts.length}`,
          }),
        ),
      );
    },
    async claimDue(max, maxWaitMs) {
      if (stopped) return [];
      const messages = await consumer.fetch({ max_messages: max, expires: Math.max(1_000, maxWaitMs) });
      fetching.add(messages);
      const due: ClaimedDelivery[] = [];
      try {
        for await (const message of messages) {
          let delivery: Delivery;
          try {
            delivery = JSON.parse(Buffer.from(message.data).toString("utf8")) as Delivery;
          } catch {
            message.term(); // not ours to read: never hand it out again
            continue;
          }
          const waitMs = delivery.nextAttemptAtMs - clock.nowMs();
          if (waitMs > 0) {
            message.nak(waitMs);
            continue;
          }
          due.push({ delivery, ack: () => message.ack(), extend: () => message.working() });
        }
      } finally {
        fetching.delete(messages);
      }
      return due;
    },
    stop() {
      stopped = true;
      for (const messages of fetching) void messages.close();
    },
  };
}
