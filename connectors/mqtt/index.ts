/**
 * The MQTT connectors (mqtt.js 5, MQTT 5 and 3.1.1):
 * - sink `mqtt`: publishes each event to a topic and confirms a batch once the broker
 *   acknowledged all of it;
 * - source `mqtt`: reads a topic filter in a persistent session and acknowledges each message
 *   only once the stream confirmed its batch.
 * See README.md for the config, the event mapping and the delivery guarantees.
 */
import type { SinkDefinition, SourceDefinition } from "../connector.js";
import { MQTT_PROTOCOL_VERSIONS, MQTT_SINK_FORMATS } from "./event-to-message.js";
import { DEFAULT_MQTT_URL } from "./mqtt-connection.js";
import { createMqttSink, DEFAULT_SINK_TIMEOUT_MS, type MqttSinkConfig } from "./mqtt-sink.js";
import {
  createMqttSource,
  DEFAULT_SESSION_EXPIRY_SECONDS,
  type MqttSourceConfig,
} from "./mqtt-source.js";

export type { MqttSinkConfig } from "./mqtt-sink.js";
export type { MqttSourceConfig } from "./mqtt-source.js";

const url = {
  type: "string",
  pattern: "^(mqtts?|tcp|tls|ssl|wss?)://",
  description: `Broker URL: mqtt://, mqtts://, ws:// or wss:// (default ${DEFAULT_MQTT_URL}).`,
};
const credentials = {
  username: { type: "string", description: "User name, when the broker asks for one." },
  password: { type: "string", description: "Password, when the broker asks for one." },
};
/** MQTT client ids are UTF-8 strings of at most 65,535 bytes; brokers may allow fewer. */
const clientId = { type: "string", minLength: 1, maxLength: 256 };

/** Sink `mqtt`: publishes each event to a topic; a batch is confirmed once the broker acknowledged all of it. */
export const mqttSink: SinkDefinition<MqttSinkConfig> = {
  name: "mqtt",
  kind: "sink",
  description:
    "Publishes each event to an MQTT topic (QoS 1 by default), as a structured CloudEvent or as its data",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["topic"],
    properties: {
      url,
      topic: {
        type: "string",
        minLength: 1,
        maxLength: 65_535,
        pattern: "^[^#+\\u0000]+$",
        description: "The topic every event is published to; no wildcards (+, #).",
      },
      qos: {
        enum: [0, 1, 2],
        description:
          "0, 1 or 2 (default 1). QoS 0 is at most once: confirmed once written to the socket.",
      },
      retain: { type: "boolean", description: "Publish retained messages (default false)." },
      format: {
        enum: [...MQTT_SINK_FORMATS],
        description:
          "cloudevent (default): the event's JSON (structured mode); data: only its data, attributes as MQTT 5 User Properties (binary mode).",
      },
      clientId: {
        ...clientId,
        description:
          "Client id (default relaybus-<stream>-sink-<random>); must be unique at the broker.",
      },
      ...credentials,
      timeoutMs: {
        type: "integer",
        minimum: 1,
        maximum: 600_000,
        description: `Longest wait for the connection and for each acknowledgement, ms (default ${DEFAULT_SINK_TIMEOUT_MS}).`,
      },
      protocolVersion: {
        enum: [...MQTT_PROTOCOL_VERSIONS],
        description: "4 (MQTT 3.1.1) or 5 (MQTT 5, default).",
      },
    },
  },
  create: createMqttSink,
};

/** Source `mqtt`: a topic filter in a persistent MQTT 5 session, acknowledged once the stream confirmed. */
export const mqttSource: SourceDefinition<MqttSourceConfig> = {
  name: "mqtt",
  kind: "source",
  description:
    "Reads an MQTT topic filter in a persistent MQTT 5 session, acknowledging messages once the stream confirmed them",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["topic"],
    properties: {
      url,
      topic: {
        type: "string",
        minLength: 1,
        maxLength: 65_535,
        pattern: "^[^\\u0000]+$",
        description: "Topic filter to subscribe to; + and # wildcards allowed.",
      },
      qos: { enum: [1, 2], description: "Subscription QoS, 1 or 2 (default 1)." },
      clientId: {
        ...clientId,
        description:
          "The session's client id (default relaybus-<stream>); must be unique at the broker and stay the same across restarts.",
      },
      ...credentials,
      sessionExpirySeconds: {
        type: "integer",
        minimum: 1,
        maximum: 4_294_967_295,
        description: `How long the broker keeps the session (and queues messages) while the source is away, s (default ${DEFAULT_SESSION_EXPIRY_SECONDS}: 7 days).`,
      },
    },
  },
  create: createMqttSource,
};
