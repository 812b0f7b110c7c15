/**
 * Conformance harness of the MQTT sink and source: the machine's Mosquitto on 127.0.0.1:1883,
 * a fresh topic (and, for the source, a fresh client id) per origin or destination.
 *
 * The sink's failures are real ones, made to happen once:
 * - retryable: the sink talks to the broker through a TCP proxy, which drops its connection
 *   and closes the next one as soon as it is accepted, so the next write cannot connect.
 *   (A client-id takeover, the obvious way to kick the sink, does not make a write fail:
 *   Mosquitto 2.0 closes the old connection without a DISCONNECT reason, and the sink simply
 *   connects again for its next write, as it should.)
 * - permanent: the shared broker allows anonymous clients, every topic and any size, and other
 *   tests use it, so nothing there refuses a publish on demand; and a refusal that lasts (an
 *   ACL, a size limit) cannot be lifted again between the failed write and the next one
 *   without racing the sink. So the proxy sends the sink's next connection to a private
 *   Mosquitto with `allow_anonymous false`, which answers CONNECT with "Not authorized"; the
 *   connection after goes to the shared broker again. Publish-time refusals ($SYS topics:
 *   Not authorized; a packet above the broker's maximum size) are tested in
 *   test/integration/connector-mqtt.test.ts.
 */
import { randomBytes } from "node:crypto";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { SinkDefinition, SourceDefinition } from "../../../connectors/index.js";
import { mqttSink, mqttSource } from "../../../connectors/mqtt/index.js";
import type { CloudEvent, JsonValue } from "../../../src/types.js";
import { LOCAL_SERVICES, requireService } from "../../helpers/local-services.js";
import {
  createTcpProxy,
  startPrivateMosquitto,
  type PrivateMosquitto,
} from "../../helpers/mqtt-test-network.js";
import type { SinkHarness, SourceHarness } from "../connector-harness.js";

const BROKER_URL = LOCAL_SERVICES.mqtt.url;
/** Sessions the tests leave behind by accident expire on their own (s). */
const TEST_SESSION_EXPIRY_SECONDS = 300;
/** The User Property that marks the harness's own flush messages. */
const MARKER = "relaybus-harness-marker";

function suffix(): string {
  return randomBytes(6).toString("hex");
}

function connectClient(options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(BROKER_URL, { protocolVersion: 5, reconnectPeriod: 0, ...options });
}

export const sinkHarness: SinkHarness = {
  definition: mqttSink as SinkDefinition<never>,
  skipReason: () => requireService("mqtt"),
  async setUp() {
    const topic = `relaybus-test/sink-${suffix()}`;
    const received: CloudEvent[] = [];
    const markers = new Map<string, () => void>();
    const recorder = await connectClient();
    recorder.on("message", (_topic, payload, packet) => {
      const marker = packet.properties?.userProperties?.[MARKER];
      if (typeof marker === "string") markers.get(marker)?.();
      else received.push(JSON.parse(payload.toString("utf8")) as CloudEvent);
    });
    await recorder.subscribeAsync(topic, { qos: 1 });
    const proxy = await createTcpProxy(LOCAL_SERVICES.mqtt.port);
    let refusing: PrivateMosquitto | undefined;
    return {
      config: {
        url: proxy.url,
        topic,
        clientId: `relaybus-test-sink-${suffix()}`,
        timeoutMs: 2_000,
      },
      invalidConfig: { topic: "relaybus-test/#", qos: 3, extra: true },
      async readBack() {
        // What the sink wrote was acknowledged, so the broker queued it to the recorder before
        // this marker, which the recorder then gets after all of it.
        const marker = suffix();
        const arrived = new Promise<void>((resolve) => markers.set(marker, resolve));
        await recorder.publishAsync(topic, "", {
          qos: 1,
          properties: { userProperties: { [MARKER]: marker } },
        });
        await arrived;
        markers.delete(marker);
        return [...received];
      },
      async failNext(retryable) {
        if (retryable) proxy.divertNext("refuse");
        else {
          refusing ??= await startPrivateMosquitto(["allow_anonymous false"]);
          proxy.divertNext(refusing.port);
        }
        await proxy.dropConnections();
      },
      async close() {
        await proxy.close();
        await refusing?.stop();
        await recorder.endAsync();
      },
    };
  },
};

export const sourceHarness: SourceHarness = {
  definition: mqttSource as SourceDefinition<never>,
  skipReason: () => requireService("mqtt"),
  async setUp() {
    const topic = `relaybus-test/source-${suffix()}`;
    const clientId = `relaybus-test-source-${suffix()}`;
    // The conformance test publishes right after it starts the source, before the source
    // has subscribed; messages published to a topic nobody subscribes to are not kept. So
    // the session the source resumes exists, subscribed, before anything is produced.
    const session = await connectClient({
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: TEST_SESSION_EXPIRY_SECONDS },
    });
    await session.subscribeAsync(topic, { qos: 1 });
    await session.endAsync();
    const publisher = await connectClient();
    const publish = async (payloads: readonly string[]) => {
      for (const payload of payloads) await publisher.publishAsync(topic, payload, { qos: 1 });
    };
    return {
      config: {
        url: BROKER_URL,
        topic,
        clientId,
        sessionExpirySeconds: TEST_SESSION_EXPIRY_SECONDS,
      },
      invalidConfig: { topic, qos: 0 },
      produce: (events: readonly CloudEvent[]) =>
        publish(events.map((event) => JSON.stringify(event))),
      produceRaw: (payloads: readonly JsonValue[]) =>
        publish(
          payloads.map((payload) =>
            typeof payload === "string" ? payload : JSON.stringify(payload),
          ),
        ),
      async close() {
        await publisher.endAsync();
        // A clean start with no expiry ends the session, and what it queued, on disconnect.
        const cleaner = await connectClient({
          clientId,
          clean: true,
          properties: { sessionExpiryInterval: 0 },
        });
        await cleaner.endAsync();
      },
    };
  },
};
