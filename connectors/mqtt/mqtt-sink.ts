/**
 * The MQTT sink: publishes each event of a batch, in order, to one topic, and confirms the
 * batch once the broker acknowledged every message (PUBACK for QoS 1, PUBCOMP for QoS 2).
 *
 * Messages are published without waiting for each acknowledgement, up to the broker's
 * Receive Maximum at a time (Mosquitto: 20; more at QoS 2 and it answers "Quota exceeded").
 * The connection opens on the first write and again on the write after one was lost; a
 * failed write always drops it, so nothing left in flight is sent again behind the stream's
 * back (the stream retries the whole batch: at least once). MQTT has no message id to
 * deduplicate on; a subscriber that must drop duplicates uses the event id (in the payload,
 * or the `id` User Property with `format: data`).
 */
import { randomBytes } from "node:crypto";
import type { IClientOptions, IClientPublishOptions } from "mqtt";
import { SinkError, type ConnectorContext, type Sink } from "../connector.js";
import type { CloudEvent } from "../../src/types.js";
import {
  eventToMessage,
  publishPacketBytes,
  type MqttMessage,
  type MqttProtocolVersion,
  type MqttSinkFormat,
} from "./event-to-message.js";
import { DEFAULT_MQTT_URL, openConnection, type MqttConnection } from "./mqtt-connection.js";
import { isRetryableMqttError } from "./reason-codes.js";

/** The sink's config (see README.md); defaults are in the field comments. */
export interface MqttSinkConfig {
  /** Broker URL (default `mqtt://127.0.0.1:1883`). */
  url?: string;
  /** The topic every event is published to (no wildcards). */
  topic: string;
  /** 0, 1 or 2 (default 1). QoS 0 is confirmed once written to the socket: at most once. */
  qos?: 0 | 1 | 2;
  /** Publish as retained messages (default false). */
  retain?: boolean;
  /** `cloudevent` (default): the event's JSON; `data`: only its data (CloudEvents binary mode). */
  format?: MqttSinkFormat;
  /** Client id (default `relaybus-<stream name>-sink-<random>`); unique at the broker. */
  clientId?: string;
  username?: string;
  password?: string;
  /** Longest wait for the connection and for each acknowledgement, ms (default 10,000). */
  timeoutMs?: number;
  /** 4 (MQTT 3.1.1) or 5 (MQTT 5, default). */
  protocolVersion?: MqttProtocolVersion;
}

/** Default longest wait for the connection and for each acknowledgement (ms). */
export const DEFAULT_SINK_TIMEOUT_MS = 10_000;
/** Receive Maximum when an MQTT 5 broker states none (the protocol's default). */
const DEFAULT_RECEIVE_MAXIMUM = 65_535;
/**
 * Unacknowledged messages at a time over MQTT 3.1.1, which has no Receive Maximum: Mosquitto's
 * default `max_inflight_messages`. Above its limit Mosquitto answers a 3.1.1 client's QoS 2
 * publish as if it took it, and drops it (MQTT 5 clients get "Quota exceeded").
 */
const MQTT_3_IN_FLIGHT = 20;

/** The MQTT sink of one stream; it connects on its first write. */
export function createMqttSink(config: MqttSinkConfig, context: ConnectorContext): Sink {
  const url = config.url ?? DEFAULT_MQTT_URL;
  const qos = config.qos ?? 1;
  const retain = config.retain ?? false;
  const format = config.format ?? "cloudevent";
  const timeoutMs = config.timeoutMs ?? DEFAULT_SINK_TIMEOUT_MS;
  const protocolVersion = config.protocolVersion ?? 5;
  const clientId =
    config.clientId ?? `relaybus-${context.streamName}-sink-${randomBytes(4).toString("hex")}`;
  const clientOptions: IClientOptions = { clientId, protocolVersion, clean: true };
  if (config.username !== undefined) clientOptions.username = config.username;
  if (config.password !== undefined) clientOptions.password = config.password;

  let connection: MqttConnection | undefined;
  let closed = false;

  async function connected(): Promise<MqttConnection> {
    if (connection?.isOpen()) return connection;
    await connection?.end(true);
    connection = undefined;
    try {
      connection = await openConnection({
        url,
        client: clientOptions,
        timeoutMs,
        signal: context.signal,
      });
    } catch (error) {
      throw new SinkError(`mqtt ${url}: cannot connect: ${(error as Error).message}`, {
        retryable: isRetryableMqttError(error),
        cause: error,
      });
    }
    return connection;
  }

  return {
    async write(events) {
      if (events.length === 0) return;
      if (closed) throw new SinkError(`mqtt ${url}: the sink is closed`, { retryable: true });
      const opened = await connected();
      const messages = events.map((event) => eventToMessage(event, format, protocolVersion));
      assertBrokerAccepts(opened, events, messages);
      try {
        await publishAll(opened, messages);
      } catch (error) {
        // Whatever is still in flight must not be sent again when mqtt.js reconnects.
        if (connection === opened) connection = undefined;
        await opened.end(true);
        throw new SinkError(`mqtt ${url} topic ${config.topic}: ${(error as Error).message}`, {
          retryable: isRetryableMqttError(error),
          cause: error,
        });
      }
    },
    async close() {
      closed = true;
      await connection?.end();
      connection = undefined;
    },
  };

  /** Refuses, before sending anything, what the broker said in its CONNACK it would refuse. */
  function assertBrokerAccepts(
    opened: MqttConnection,
    events: readonly CloudEvent[],
    messages: readonly MqttMessage[],
  ): void {
    const limits = opened.connack.properties;
    if (limits === undefined) return;
    if (limits.maximumQoS !== undefined && qos > limits.maximumQoS) {
      throw new SinkError(
        `mqtt ${url}: the broker accepts QoS ${limits.maximumQoS} at most, the sink is set to ${qos}`,
        { retryable: false },
      );
    }
    if (retain && limits.retainAvailable === false) {
      throw new SinkError(
        `mqtt ${url}: the broker does not keep retained messages; set retain: false`,
        { retryable: false },
      );
    }
    const maximumBytes = limits.maximumPacketSize;
    if (maximumBytes === undefined) return;
    messages.forEach((message, index) => {
      const bytes = publishPacketBytes(config.topic, message, qos, protocolVersion);
      if (bytes > maximumBytes) {
        throw new SinkError(
          `mqtt ${url}: event ${events[index]?.id} makes a ${bytes}-byte packet, more than the broker's maximum packet size of ${maximumBytes} bytes`,
          { retryable: false },
        );
      }
    });
  }

  /**
   * Publishes in order, at most the broker's Receive Maximum unacknowledged at a time; resolves
   * once every message is acknowledged. Fails on the first refusal, on a lost connection, or
   * when no acknowledgement came for `timeoutMs`.
   */
  function publishAll(opened: MqttConnection, messages: readonly MqttMessage[]): Promise<void> {
    const window =
      qos === 0
        ? messages.length
        : protocolVersion === 4
          ? MQTT_3_IN_FLIGHT
          : (opened.connack.properties?.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM);
    return new Promise<void>((resolve, reject) => {
      let next = 0;
      let inFlight = 0;
      let acknowledged = 0;
      let settled = false;
      let timer = setTimeout(onTimeout, timeoutMs);
      const stopListening = opened.onLost(finish);
      pump();

      function pump(): void {
        while (!settled && next < messages.length && inFlight < window) {
          const message = messages[next++] as MqttMessage;
          inFlight += 1;
          const options: IClientPublishOptions = { qos, retain };
          if (message.properties !== undefined) options.properties = message.properties;
          opened.client.publish(config.topic, message.payload, options, (error) => {
            inFlight -= 1;
            if (error) return finish(error);
            acknowledged += 1;
            clearTimeout(timer);
            timer = setTimeout(onTimeout, timeoutMs);
            if (acknowledged === messages.length) finish();
            else pump();
          });
        }
      }
      function onTimeout(): void {
        finish(
          new Error(
            `no acknowledgement within ${timeoutMs} ms (${acknowledged} of ${messages.length} acknowledged)`,
          ),
        );
      }
      function finish(error?: unknown): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stopListening();
        if (error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }
}
