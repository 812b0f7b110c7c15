/**
 * What the shared conformance tests cannot say about the MQTT connectors, against the local
 * Mosquitto (and, where a test needs settings the shared broker does not have, a private one):
 * the sink's message format in both modes and both protocol versions, its refusals (a $SYS
 * topic, a packet above the broker's maximum size), its window under the broker's Receive
 * Maximum, its timeouts and reconnection; the source's mapping of raw messages, QoS 2,
 * read-ahead without acknowledging, retained messages across restarts, and a lost session.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Socket } from "node:net";
import { test } from "node:test";
import type { MqttSourceConfig } from "../../connectors/mqtt/index.js";
import type { CloudEvent } from "../../src/types.js";
import { testEvents } from "../helpers/connector-runs.js";
import { LOCAL_SERVICES, requireService } from "../helpers/local-services.js";
import { mqttFixture, type MqttFixture } from "../helpers/mqtt-fixture.js";
import { assertRejectsWithSinkError } from "../helpers/sink-errors.js";

const BROKER_URL = LOCAL_SERVICES.mqtt.url;
const skip = (await requireService("mqtt")) ?? false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, { type: "mqtt.test" });
}

function fresh(kind: string): string {
  return `relaybus-test/${kind}-${randomBytes(5).toString("hex")}`;
}

function freshClientId(): string {
  return `relaybus-test-${randomBytes(5).toString("hex")}`;
}

/** A fresh topic, and a fresh client id whose persistent session subscribes to it already. */
async function sessionOnFreshTopic(
  fx: MqttFixture,
  kind: string,
  qos?: 1 | 2,
): Promise<{ topic: string; clientId: string }> {
  const topic = fresh(kind);
  const clientId = freshClientId();
  await fx.session(clientId, topic, qos);
  return { topic, clientId };
}

async function waitUntil(what: string, done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test(
  "mqtt sink - publishes structured CloudEvents with the MQTT 5 content type",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const topic = fresh("sink");
    const received = await fx.subscriber(topic);
    const written = events(2, "structured");
    await fx.sink({ url: BROKER_URL, topic }).write(written);
    await waitUntil("2 messages", () => received.length === 2);
    assert.deepEqual(
      received.map((m) => JSON.parse(m.payload.toString("utf8")) as unknown),
      written,
    );
    assert.equal(received[0]?.packet.properties?.contentType, "application/cloudevents+json");
    assert.equal(received[0]?.packet.properties?.payloadFormatIndicator, true);
    assert.equal(received[0]?.packet.qos, 1);
  },
);

test(
  "mqtt sink - format data writes CloudEvents binary mode, which the MQTT source reads back as the same events",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const { topic, clientId } = await sessionOnFreshTopic(fx, "binary");
    const received = await fx.subscriber(topic);
    const written: CloudEvent[] = [
      {
        specversion: "1.0",
        id: "binary-1",
        source: "test",
        type: "mqtt.test",
        subject: "orders/7",
        time: "2024-05-06T07:08:09Z",
        datacontenttype: "application/json",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        data: { total: 12.5, items: ["a"] },
      },
      {
        specversion: "1.0",
        id: "binary-2",
        source: "test",
        type: "mqtt.test",
        data_base64: Buffer.from([0, 255, 1]).toString("base64"),
      },
    ];
    await fx.sink({ url: BROKER_URL, topic, format: "data" }).write(written);
    await waitUntil("2 messages", () => received.length === 2);
    assert.deepEqual(JSON.parse(received[0]?.payload.toString("utf8") ?? ""), {
      total: 12.5,
      items: ["a"],
    });
    assert.equal(received[0]?.packet.properties?.userProperties?.id, "binary-1");
    assert.equal(received[0]?.packet.properties?.contentType, "application/json");
    assert.deepEqual(received[1]?.payload, Buffer.from([0, 255, 1]));
    const run = fx.source({ url: BROKER_URL, topic, clientId });
    await run.waitFor(2);
    assert.deepEqual(run.received, [
      written[0],
      { ...written[1], datacontenttype: "application/octet-stream" },
    ]);
  },
);

test(
  "mqtt sink - MQTT 3.1.1 publishes the events' JSON without properties, no more at once than Mosquitto keeps",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const topic = fresh("v311");
    const received = await fx.subscriber(topic, { qos: 2 });
    const written = events(60, "v311");
    // Above its 20 in flight, Mosquitto acknowledges a 3.1.1 client's QoS 2 publish and drops it.
    await fx.sink({ url: BROKER_URL, topic, protocolVersion: 4, qos: 2 }).write(written);
    await waitUntil("60 messages", () => received.length === 60);
    assert.deepEqual(
      received.map((m) => JSON.parse(m.payload.toString("utf8")) as unknown),
      written,
    );
    assert.equal(received[0]?.packet.properties?.contentType, undefined);
  },
);

test(
  "mqtt sink - a publish the broker refuses ($SYS topics: Not authorized) fails as permanent",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const sink = fx.sink({
      url: BROKER_URL,
      topic: `$SYS/relaybus-test/${randomBytes(4).toString("hex")}`,
    });
    await assertRejectsWithSinkError(sink.write(events(1, "sys")), false, /Not authorized/);
  },
);

test(
  "mqtt sink - an event above the broker's maximum packet size fails as permanent before anything is sent",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const broker = await fx.mosquitto(["allow_anonymous true", "max_packet_size 2000"]);
    const topic = fresh("large");
    const received = await fx.subscriber(topic, { url: broker.url });
    const sink = fx.sink({ url: broker.url, topic });
    const [small, large] = events(2, "size");
    assert.ok(small !== undefined && large !== undefined);
    large.data = { text: "x".repeat(3_000) };
    await assertRejectsWithSinkError(
      sink.write([small, large]),
      false,
      new RegExp(
        `event ${large.id} makes a \\d+-byte packet, more than the broker's maximum packet size of 2000 bytes`,
      ),
    );
    await sleep(200);
    assert.equal(received.length, 0, "nothing of the refused batch was published");
    await sink.write([small]);
    await waitUntil("the small event", () => received.length === 1);
  },
);

test(
  "mqtt sink - QoS 2 batches above the broker's Receive Maximum are all confirmed, in order",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const topic = fresh("window");
    const received = await fx.subscriber(topic, { qos: 2 });
    const written = events(60, "window");
    // Mosquitto's Receive Maximum is 20: the 21st unacknowledged QoS 2 publish gets "Quota exceeded".
    await fx.sink({ url: BROKER_URL, topic, qos: 2 }).write(written);
    await waitUntil("60 messages", () => received.length === 60);
    assert.deepEqual(
      received.map((m) => (JSON.parse(m.payload.toString("utf8")) as CloudEvent).id),
      written.map((e) => e.id),
    );
  },
);

test(
  "mqtt sink - a broker that cannot be reached, or does not answer, fails the write as retryable",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const silent: Socket[] = [];
    const server = createServer((socket) => silent.push(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    fx.closeAfter(() => {
      for (const socket of silent) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as { port: number };
    const started = Date.now();
    await assertRejectsWithSinkError(
      fx
        .sink({ url: `mqtt://127.0.0.1:${port}`, topic: "t", timeoutMs: 300 })
        .write(events(1, "silent")),
      true,
      /no CONNACK within 300 ms/,
    );
    assert.ok(Date.now() - started < 2_000, "gives up after timeoutMs");
    // Port 9 (discard) is closed on loopback: the connection is refused.
    await assertRejectsWithSinkError(
      fx
        .sink({ url: "mqtt://127.0.0.1:9", topic: "t", timeoutMs: 1_000 })
        .write(events(1, "refused")),
      true,
      /cannot connect/,
    );
  },
);

test(
  "mqtt sink - connects again for the next write after its connection was dropped",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const topic = fresh("reconnect");
    const received = await fx.subscriber(topic);
    const proxy = await fx.proxy();
    const sink = fx.sink({ url: proxy.url, topic, timeoutMs: 2_000 });
    await sink.write(events(1, "before"));
    await proxy.dropConnections();
    await sink.write(events(1, "after"));
    await waitUntil("2 messages", () => received.length === 2);
    assert.deepEqual(
      received.map((m) => (JSON.parse(m.payload.toString("utf8")) as CloudEvent).id),
      ["before-0", "after-0"],
    );
  },
);

test(
  "mqtt source - wraps raw messages: the publisher's id User Property, the topic as source, bytes as data_base64",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const { topic, clientId } = await sessionOnFreshTopic(fx, "raw");
    const publisher = await fx.client();
    await publisher.publishAsync(topic, "hello", {
      qos: 1,
      properties: { userProperties: { id: "order-7" } },
    });
    await publisher.publishAsync(topic, Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 });
    await publisher.publishAsync(topic, "hello", { qos: 1 });
    const run = fx.source({ url: BROKER_URL, topic, clientId });
    await run.waitFor(3);
    const [named, bytes, hashed] = run.received;
    assert.deepEqual(named, {
      specversion: "1.0",
      id: "order-7",
      source: `relaybus.mqtt/${topic}`,
      type: "relaybus.mqtt.message",
      datacontenttype: "application/json",
      data: "hello",
    });
    assert.equal(bytes?.data_base64, Buffer.from([0xff, 0xfe, 0x00]).toString("base64"));
    assert.equal(bytes?.datacontenttype, "application/octet-stream");
    assert.match(hashed?.id ?? "", /^mqtt-[0-9a-f]{32}$/);
  },
);

test(
  "mqtt source - reads ahead up to twice maxBatchEvents while batches wait for confirmation, and acknowledges none of them",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const { topic, clientId } = await sessionOnFreshTopic(fx, "readahead");
    const publisher = await fx.client();
    for (const event of events(12, "ahead"))
      await publisher.publishAsync(topic, JSON.stringify(event), { qos: 1 });
    const first = fx.source(
      { url: BROKER_URL, topic, clientId },
      { maxBatchEvents: 5, confirm: () => false },
    );
    await first.waitFor(10);
    // Its Receive Maximum (2 x 5) keeps the broker from sending more until something is acknowledged.
    await sleep(300);
    assert.deepEqual(
      first.batches.map((b) => b.events.length),
      [5, 5],
    );
    await first.stop();
    const second = fx.source({ url: BROKER_URL, topic, clientId });
    await second.waitFor(12);
    assert.deepEqual(
      second.received.map((e) => e.id),
      events(12, "ahead").map((e) => e.id),
    );
  },
);

test(
  "mqtt source - keeps handing over messages that trickle in while no batch is confirmed",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const { topic, clientId } = await sessionOnFreshTopic(fx, "trickle");
    const publisher = await fx.client();
    const run = fx.source({ url: BROKER_URL, topic, clientId }, { confirm: () => false });
    // Each message comes after the batch wait (50 ms), so each is a batch of its own.
    for (const event of events(6, "trickle")) {
      await publisher.publishAsync(topic, JSON.stringify(event), { qos: 1 });
      await sleep(120);
    }
    await run.waitFor(6);
    assert.ok(run.batches.length >= 4, `small batches, got ${run.batches.length}`);
  },
);

test(
  "mqtt source - QoS 2: what was not confirmed comes again, what was confirmed does not",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const { topic, clientId } = await sessionOnFreshTopic(fx, "qos2", 2);
    const publisher = await fx.client();
    for (const event of events(3, "exactly"))
      await publisher.publishAsync(topic, JSON.stringify(event), { qos: 2 });
    const config: MqttSourceConfig = { url: BROKER_URL, topic, clientId, qos: 2 };
    const first = fx.source(config, { confirm: () => false });
    await first.waitFor(3);
    await first.stop();
    const second = fx.source(config);
    await second.waitFor(3);
    assert.deepEqual(
      second.received.map((e) => e.id),
      ["exactly-0", "exactly-1", "exactly-2"],
    );
    await sleep(200);
    await second.stop();
    const third = fx.source(config);
    await publisher.publishAsync(topic, JSON.stringify(events(1, "later")[0]), { qos: 2 });
    await third.waitFor(1);
    await sleep(300);
    assert.deepEqual(
      third.received.map((e) => e.id),
      ["later-0"],
    );
  },
);

test(
  "mqtt source - a retained message is handed over once, not again each time the session resumes",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const topic = fresh("retained");
    const clientId = freshClientId();
    fx.endSessionAfter(clientId);
    const publisher = await fx.client();
    await publisher.publishAsync(topic, JSON.stringify(events(1, "retained")[0]), {
      qos: 1,
      retain: true,
    });
    try {
      const config: MqttSourceConfig = {
        url: BROKER_URL,
        topic,
        clientId,
        sessionExpirySeconds: 300,
      };
      const first = fx.source(config);
      await first.waitFor(1);
      await sleep(200);
      await first.stop();
      const second = fx.source(config);
      await sleep(500);
      await second.stop();
      assert.deepEqual(second.received, []);
    } finally {
      // An empty retained message clears the topic's retained one.
      await publisher.publishAsync(topic, "", { qos: 1, retain: true });
    }
  },
);

test(
  "mqtt source - the run fails when its connection is lost, and a new run gets what was not confirmed",
  { skip },
  async (t) => {
    const fx = mqttFixture(t);
    const { topic, clientId } = await sessionOnFreshTopic(fx, "lost");
    const publisher = await fx.client();
    await publisher.publishAsync(topic, JSON.stringify(events(1, "lost")[0]), { qos: 1 });
    const proxy = await fx.proxy();
    const first = fx.source({ url: proxy.url, topic, clientId }, { confirm: () => false });
    await first.waitFor(1);
    await proxy.dropConnections();
    const outcome = await first.settled;
    assert.ok(outcome instanceof Error, `run rejects, got ${String(outcome)}`);
    assert.match(outcome.message, /connection was lost/);
    const second = fx.source({ url: BROKER_URL, topic, clientId });
    await second.waitFor(1);
    assert.equal(second.received[0]?.id, "lost-0");
  },
);
