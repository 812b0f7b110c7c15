/**
 * The MQTT source: subscribes to a topic filter in a persistent MQTT 5 session and hands the
 * messages over in batches, acknowledging each message to the broker only once the stream
 * confirmed its batch (at least once).
 *
 * The broker keeps the session under the client id while the source is away (until
 * `sessionExpirySeconds`): it queues what is published meanwhile and sends unacknowledged
 * messages again when the source reconnects, so the broker, not Relaybus, holds the position.
 * How many messages may wait unacknowledged at once is the broker's receive limit (Mosquitto:
 * `max_inflight_messages`, 20) and the source's own Receive Maximum, twice `maxBatchEvents`.
 */
import type { IClientOptions, IPublishPacket } from "mqtt";
import type { Source, SourceBatch, SourceContext } from "../connector.js";
import type { CloudEvent } from "../../src/types.js";
import { deferAcks, type DeferredAcks } from "./deferred-acks.js";
import { DEFAULT_MQTT_URL, openConnection, type MqttConnection } from "./mqtt-connection.js";
import { messageToEvent } from "./message-to-event.js";
import { describeReasonCode, reasonCodeOf } from "./reason-codes.js";

/** The source's config (see README.md); defaults are in the field comments. */
export interface MqttSourceConfig {
  /** Broker URL (default `mqtt://127.0.0.1:1883`). */
  url?: string;
  /** Topic filter to subscribe to; `+` and `#` wildcards allowed. */
  topic: string;
  /** Subscription QoS, 1 or 2 (default 1). Messages published at a lower QoS arrive at that QoS. */
  qos?: 1 | 2;
  /** The session's client id (default `relaybus-<stream name>`); unique at the broker. */
  clientId?: string;
  username?: string;
  password?: string;
  /** How long the broker keeps the session while the source is away, s (default 604,800: 7 days). */
  sessionExpirySeconds?: number;
}

/** How long the broker keeps the source's session while it is away: 7 days, in s. */
export const DEFAULT_SESSION_EXPIRY_SECONDS = 604_800;
/** Longest wait for the broker's CONNACK (ms). */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long a stopping run lets batches being confirmed settle, so their acks go out (ms). */
const STOP_GRACE_MS = 500;
/** MQTT's largest Receive Maximum. */
const MAX_RECEIVE_MAXIMUM = 65_535;

/** The client id a stream's source uses when its config names none. */
export function defaultSourceClientId(streamName: string): string {
  return `relaybus-${streamName}`;
}

/** A message received and not yet handed over. */
interface Held {
  event: CloudEvent;
  messageId: number;
  qos: IPublishPacket["qos"];
  arrivedAtMs: number;
}

/** The MQTT source for one stream run; `run` connects, `close` releases the connection. */
export function createMqttSource(config: MqttSourceConfig, context: SourceContext): Source {
  const url = config.url ?? DEFAULT_MQTT_URL;
  const qos = config.qos ?? 1;
  const clientId = config.clientId ?? defaultSourceClientId(context.streamName);
  const { signal, clock, logger, maxBatchEvents, maxBatchWaitMs } = context;
  let connection: MqttConnection | undefined;

  return {
    async run(handle) {
      if (signal.aborted) return;
      const held: Held[] = [];
      let failure: { error: unknown } | undefined;
      let wake: (() => void) | undefined;
      const notify = () => {
        const resume = wake;
        wake = undefined;
        resume?.();
      };
      const take = (topic: string, payload: Buffer, packet: IPublishPacket) => {
        const event = messageToEvent({ topic, payload, properties: packet.properties });
        held.push({
          event,
          messageId: packet.messageId ?? 0,
          qos: packet.qos,
          arrivedAtMs: clock.nowMs(),
        });
        notify();
      };

      let acks: DeferredAcks | undefined;
      const client: IClientOptions = {
        clientId,
        protocolVersion: 5,
        clean: false,
        properties: {
          sessionExpiryInterval: config.sessionExpirySeconds ?? DEFAULT_SESSION_EXPIRY_SECONDS,
          receiveMaximum: Math.min(MAX_RECEIVE_MAXIMUM, 2 * maxBatchEvents),
        },
        // QoS 1 and 2 messages come through here, QoS 2 ones before mqtt.js would emit them
        // (it emits those on PUBREL, which comes only after the PUBREC this source holds back).
        customHandleAcks: (topic, payload, packet: IPublishPacket, done) => {
          take(topic, payload, packet);
          done(0);
        },
      };
      if (config.username !== undefined) client.username = config.username;
      if (config.password !== undefined) client.password = config.password;
      try {
        connection = await openConnection({
          url,
          client,
          timeoutMs: CONNECT_TIMEOUT_MS,
          signal,
          prepare(mqttClient) {
            acks = deferAcks(mqttClient);
            mqttClient.on("message", (topic, payload, packet) => {
              if (packet.qos === 0) take(topic, payload, packet);
            });
          },
        });
      } catch (error) {
        if (signal.aborted) return;
        throw new Error(`mqtt ${url}: cannot connect as ${clientId}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const opened = connection;
      const acknowledge = acks;
      if (acknowledge === undefined) {
        // Unreachable: openConnection calls prepare before it connects.
        await opened.end(true);
        throw new Error("mqtt: the client was not prepared");
      }
      if (!opened.connack.sessionPresent) {
        logger.info(
          "mqtt source: the broker had no session for this client id; it starts one now",
          { clientId, topic: config.topic },
        );
      }
      opened.onLost((error) => {
        failure ??= { error: new Error(`mqtt ${url}: ${error.message}`, { cause: error }) };
        notify();
      });
      // Retain Handling 1: retained messages only when the subscription is new, not again on
      // every restart of the same session.
      opened.client.subscribeAsync(config.topic, { qos, rh: 1 }).catch((error: unknown) => {
        const code = reasonCodeOf(error);
        const why = code === undefined ? (error as Error).message : describeReasonCode(code);
        failure ??= {
          error: new Error(
            `mqtt ${url}: the broker refused the subscription to ${config.topic}: ${why}`,
            { cause: error },
          ),
        };
        notify();
      });
      signal.addEventListener("abort", notify);

      // Read-ahead needs no bound of its own: the broker sends no more QoS 1 and 2 messages
      // than the Receive Maximum until some are acknowledged. (QoS 0 has no flow control.)
      let acking: Promise<void> = Promise.resolve();
      try {
        while (!signal.aborted && failure === undefined) {
          const waitMs = batchWaitMs(held);
          if (waitMs === undefined || waitMs > 0) {
            await new Promise<void>((resolve) => {
              const timer = waitMs === undefined ? undefined : setTimeout(resume, waitMs);
              function resume() {
                clearTimeout(timer);
                resolve();
              }
              wake = resume;
            });
            continue;
          }
          const batch = held.splice(0, maxBatchEvents);
          const confirmed = handle({ events: batch.map((h) => h.event) } satisfies SourceBatch);
          // Handled here at once: a rejection may come before the chain below reaches it.
          confirmed.catch(() => {});
          acking = acking
            .then(() => confirmed)
            .then(
              () => {
                // After a batch failed, acknowledging a later one would skip the failed one.
                if (failure !== undefined) return;
                for (const message of batch) {
                  if (message.qos !== 0) acknowledge.acknowledge(message.messageId, message.qos);
                }
              },
              (error: unknown) => {
                failure ??= { error };
                notify();
              },
            );
        }
      } finally {
        signal.removeEventListener("abort", notify);
        let graceTimer: NodeJS.Timeout | undefined;
        await Promise.race([
          acking,
          new Promise((resolve) => (graceTimer = setTimeout(resolve, STOP_GRACE_MS))),
        ]);
        clearTimeout(graceTimer);
        await opened.end();
      }
      if (failure !== undefined && !signal.aborted) throw failure.error;
    },
    async close() {
      await connection?.end(true);
    },
  };

  /** How long to wait before handing over a batch: 0 now, undefined until something happens. */
  function batchWaitMs(held: readonly Held[]): number | undefined {
    const oldest = held[0];
    if (oldest === undefined) return undefined;
    if (held.length >= maxBatchEvents) return 0;
    return Math.max(0, oldest.arrivedAtMs + maxBatchWaitMs - clock.nowMs());
  }
}
