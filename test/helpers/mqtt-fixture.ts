/**
 * The fixture of the MQTT connector integration tests: clients, subscribers, persistent
 * sessions, sinks, source runs, proxies and private brokers, each closed (and each session
 * ended) after the test, which then checks that nothing is left open.
 */
import type { TestContext } from "node:test";
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import type { Sink } from "../../connectors/index.js";
import {
  mqttSink,
  mqttSource,
  type MqttSinkConfig,
  type MqttSourceConfig,
} from "../../connectors/mqtt/index.js";
import { runSource, sinkContext, type SourceRun, type SourceRunOptions } from "./connector-runs.js";
import { LOCAL_SERVICES } from "./local-services.js";
import {
  createTcpProxy,
  startPrivateMosquitto,
  type PrivateMosquitto,
  type TcpProxy,
} from "./mqtt-test-network.js";
import { assertNothingOpen } from "./open-handles.js";

const BROKER_URL = LOCAL_SERVICES.mqtt.url;

/** A message a subscriber got. */
export interface Received {
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

/** What the MQTT connector tests set up, each closed after the test. */
export interface MqttFixture {
  /** A client of the test's own, connected to `url` (default the shared broker). */
  client(options?: IClientOptions & { url?: string }): Promise<MqttClient>;
  /** Subscribes a client of its own to `topic` and records what arrives. */
  subscriber(topic: string, options?: { url?: string; qos?: 0 | 1 | 2 }): Promise<Received[]>;
  /** A persistent session for `clientId` already subscribed to `topic`, ended after the test. */
  session(clientId: string, topic: string, qos?: 1 | 2): Promise<void>;
  /** Ends `clientId`'s session after the test. */
  endSessionAfter(clientId: string): void;
  /** Runs `close` after the test, before checking that nothing is left open. */
  closeAfter(close: () => Promise<unknown>): void;
  sink(config: MqttSinkConfig): Sink;
  /** A run of the source, stopped after the test; `run` may fail. */
  source(
    config: MqttSourceConfig,
    options?: Pick<SourceRunOptions, "maxBatchEvents" | "confirm">,
  ): SourceRun;
  proxy(): Promise<TcpProxy>;
  mosquitto(settings: string[]): Promise<PrivateMosquitto>;
}

/** A fixture whose clients, connectors, sessions and brokers are closed after the test, which then checks nothing is left open. */
export function mqttFixture(t: TestContext): MqttFixture {
  const closers: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
    await assertNothingOpen();
  });
  const fx: MqttFixture = {
    async client(options = {}) {
      const { url = BROKER_URL, ...rest } = options;
      const client = await mqtt.connectAsync(url, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        ...rest,
      });
      closers.push(() => client.endAsync(true));
      return client;
    },
    async subscriber(topic, options = {}) {
      const client = await fx.client(options.url === undefined ? {} : { url: options.url });
      const received: Received[] = [];
      client.on("message", (messageTopic, payload, packet) =>
        received.push({ topic: messageTopic, payload, packet }),
      );
      await client.subscribeAsync(topic, { qos: options.qos ?? 1 });
      return received;
    },
    async session(clientId, topic, qos = 1) {
      const client = await mqtt.connectAsync(BROKER_URL, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        clientId,
        clean: false,
        properties: { sessionExpiryInterval: 300 },
      });
      await client.subscribeAsync(topic, { qos });
      await client.endAsync();
      fx.endSessionAfter(clientId);
    },
    endSessionAfter(clientId) {
      closers.push(async () => {
        // A clean start without expiry ends the session, and what it queued, on disconnect.
        const cleaner = await mqtt.connectAsync(BROKER_URL, {
          protocolVersion: 5,
          reconnectPeriod: 0,
          clientId,
          clean: true,
        });
        await cleaner.endAsync();
      });
    },
    closeAfter(close) {
      closers.push(close);
    },
    sink(config) {
      const sink = mqttSink.create(config, sinkContext());
      closers.push(() => sink.close());
      return sink;
    },
    source(config, options = {}) {
      const run = runSource(mqttSource, config, { ...options, runMayFail: true });
      closers.push(run.stop);
      return run;
    },
    async proxy() {
      const proxy = await createTcpProxy(LOCAL_SERVICES.mqtt.port);
      closers.push(() => proxy.close());
      return proxy;
    },
    async mosquitto(settings) {
      const broker = await startPrivateMosquitto(settings);
      closers.push(() => broker.stop());
      return broker;
    },
  };
  return fx;
}
