/**
 * What the shared conformance tests cannot say about the RabbitMQ connectors, against the
 * local RabbitMQ: the sink refuses a missing exchange permanently and then recovers, sets the
 * message properties, treats a lost connection as retryable and reconnects, and refuses a
 * bad login permanently; the source refuses a missing queue or declares it, maps raw
 * messages, counts its backlog, and gives a failed batch back in order.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import { connect, type Channel, type ConfirmChannel, type GetMessage, type Options } from "amqplib";
import type { Sink } from "../../connectors/index.js";
import {
  rabbitmqSink,
  rabbitmqSource,
  type RabbitmqSinkConfig,
  type RabbitmqSourceConfig,
} from "../../connectors/rabbitmq/index.js";
import type { CloudEvent } from "../../src/types.js";
import { createAmqpRelay, type AmqpRelay } from "../helpers/amqp-relay.js";
import {
  runSource,
  sinkContext,
  testEvents,
  type SourceRun,
  type SourceRunOptions,
} from "../helpers/connector-runs.js";
import { LOCAL_SERVICES, requireService } from "../helpers/local-services.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { assertRejectsWithSinkError } from "../helpers/sink-errors.js";

const BROKER_URL = LOCAL_SERVICES.rabbitmq.url;
const skip = (await requireService("rabbitmq")) ?? false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, { type: "rabbitmq.test", time: "2024-05-06T07:08:09Z" });
}

function freshName(kind: string): string {
  return `relaybus-test-${kind}-${randomBytes(4).toString("hex")}`;
}

interface Fixture {
  /** A channel of the test's own connection, with confirms, for setting up and reading back. */
  channel: ConfirmChannel;
  /** A fresh queue, deleted after the test. */
  queue(options?: Options.AssertQueue): Promise<string>;
  /** A fresh queue holding `held` as structured-mode messages, deleted after the test. */
  queueHolding(held: readonly CloudEvent[]): Promise<string>;
  /** A fresh direct exchange with a fresh queue bound under `key`, both deleted after the test. */
  exchangeWithQueue(key: string): Promise<{ exchange: string; queue: string }>;
  /** Deletes `name` after the test (for exchanges and queues the test made another way). */
  forget(kind: "exchange" | "queue", name: string): void;
  relay(): Promise<AmqpRelay>;
  sink(config: RabbitmqSinkConfig): Sink;
  /** A run of the source, stopped after the test; `run` may fail. */
  source(
    config: RabbitmqSourceConfig,
    options?: Pick<SourceRunOptions, "maxBatchEvents" | "handle">,
  ): SourceRun;
  /** Every message in `queue` now, consumed. */
  drain(queue: string): Promise<GetMessage[]>;
  /** Whether `queue` exists, and is durable when `durable` is asked. */
  queueExists(queue: string, options?: { durable: boolean }): Promise<boolean>;
}

/** A fixture whose connectors, relays, exchanges, queues and connection are closed after the test, which then checks nothing is left open. */
async function fixture(t: TestContext): Promise<Fixture> {
  const connection = await connect(BROKER_URL);
  const channel = await connection.createConfirmChannel();
  const names: { kind: "exchange" | "queue"; name: string }[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
    // A channel of its own: a failed delete would close the shared one.
    const cleanup: Channel = await connection.createChannel();
    for (const { kind, name } of names) {
      if (kind === "exchange") await cleanup.deleteExchange(name);
      else await cleanup.deleteQueue(name);
    }
    await connection.close();
    await assertNothingOpen();
  });
  const fx: Fixture = {
    channel,
    async queue(options = { durable: false }) {
      const name = freshName("queue");
      names.push({ kind: "queue", name });
      await channel.assertQueue(name, options);
      return name;
    },
    async queueHolding(held) {
      const queue = await fx.queue();
      await publish(
        channel,
        queue,
        held.map((e) => JSON.stringify(e)),
      );
      return queue;
    },
    async exchangeWithQueue(key) {
      const exchange = freshName("exchange");
      names.push({ kind: "exchange", name: exchange });
      await channel.assertExchange(exchange, "direct", { durable: false });
      const queue = await fx.queue();
      await channel.bindQueue(queue, exchange, key);
      return { exchange, queue };
    },
    forget(kind, name) {
      names.push({ kind, name });
    },
    async relay() {
      const relay = await createAmqpRelay(BROKER_URL);
      closers.push(() => relay.close());
      return relay;
    },
    sink(config) {
      const sink = rabbitmqSink.create(config, sinkContext());
      closers.push(() => sink.close());
      return sink;
    },
    source(config, options = {}) {
      const run = runSource(rabbitmqSource, config, { ...options, runMayFail: true });
      closers.push(run.stop);
      return run;
    },
    async queueExists(queue, options) {
      // A channel of its own: the broker closes the channel that asks about a missing queue.
      const probe = await connection.createChannel();
      probe.on("error", () => {});
      try {
        if (options === undefined) await probe.checkQueue(queue);
        else await probe.assertQueue(queue, options);
        await probe.close();
        return true;
      } catch {
        return false;
      }
    },
    async drain(queue) {
      const messages: GetMessage[] = [];
      for (;;) {
        const message = await channel.get(queue, { noAck: true });
        if (message === false) return messages;
        messages.push(message);
      }
    },
  };
  return fx;
}

async function publish(
  channel: ConfirmChannel,
  queue: string,
  bodies: (string | Buffer)[],
  options: Options.Publish = {},
) {
  for (const body of bodies)
    channel.sendToQueue(queue, Buffer.isBuffer(body) ? body : Buffer.from(body), options);
  await channel.waitForConfirms();
}

test(
  "rabbitmq sink - a missing exchange is refused as permanent, and the same sink writes once it exists",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const exchange = freshName("exchange");
    const sink = fx.sink({ exchange, routingKey: "k", timeoutMs: 5_000 });
    await assertRejectsWithSinkError(
      sink.write(events(2, "early")),
      false,
      /NOT_FOUND - no exchange/,
    );
    fx.forget("exchange", exchange);
    await fx.channel.assertExchange(exchange, "direct", { durable: false });
    const queue = await fx.queue();
    await fx.channel.bindQueue(queue, exchange, "k");
    await sink.write(events(2, "later"));
    const held = (await fx.drain(queue)).map(
      (m) => (JSON.parse(m.content.toString()) as CloudEvent).id,
    );
    assert.deepEqual(held, ["later-0", "later-1"]);
  },
);

test(
  "rabbitmq sink - messages carry the event's id, type and time, persistently, in either format",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const { exchange, queue } = await fx.exchangeWithQueue("k");
    const [event] = events(1, "props");
    assert.ok(event);
    await fx.sink({ exchange, routingKey: "k" }).write([event]);
    await fx.sink({ exchange, routingKey: "k", format: "data", persistent: false }).write([event]);
    const [structured, data] = await fx.drain(queue);
    assert.ok(structured && data);
    assert.deepEqual(JSON.parse(structured.content.toString()), event);
    assert.equal(structured.properties.contentType, "application/cloudevents+json");
    assert.equal(structured.properties.messageId, "props-0");
    assert.equal(structured.properties.type, "rabbitmq.test");
    assert.equal(structured.properties.timestamp, Date.parse("2024-05-06T07:08:09Z") / 1000);
    assert.equal(structured.properties.deliveryMode, 2);
    assert.deepEqual(JSON.parse(data.content.toString()), { i: 0 });
    assert.equal(data.properties.contentType, "application/json");
    assert.equal(data.properties.messageId, "props-0");
    assert.notEqual(data.properties.deliveryMode, 2);
  },
);

test(
  "rabbitmq sink - a connection lost during a write is retryable, and the next write reconnects",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const { exchange, queue } = await fx.exchangeWithQueue("k");
    const relay = await fx.relay();
    const sink = fx.sink({ url: relay.url, exchange, routingKey: "k", timeoutMs: 5_000 });
    await sink.write(events(1, "before"));
    relay.cutOnNextSend();
    await assertRejectsWithSinkError(
      sink.write(events(2, "cut")),
      true,
      /connection to the broker was lost/,
    );
    await sink.write(events(2, "after"));
    const held = (await fx.drain(queue)).map(
      (m) => (JSON.parse(m.content.toString()) as CloudEvent).id,
    );
    assert.deepEqual(held, ["before-0", "after-0", "after-1"]);
  },
);

test(
  "rabbitmq sink - with mandatory false, a batch no queue takes is confirmed and dropped",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const { exchange, queue } = await fx.exchangeWithQueue("bound");
    await fx
      .sink({ exchange, routingKey: "unbound", mandatory: false })
      .write(events(2, "dropped"));
    await assertRejectsWithSinkError(
      fx.sink({ exchange, routingKey: "unbound" }).write(events(1, "returned")),
      false,
      /matched no binding for routing key "unbound"/,
    );
    assert.equal((await fx.drain(queue)).length, 0);
  },
);

test("rabbitmq sink - a refused login is permanent", { skip }, async (t) => {
  const fx = await fixture(t);
  const url = new URL(BROKER_URL);
  url.password = "not-the-password";
  const sink = fx.sink({ url: url.href, exchange: "", routingKey: "nowhere", timeoutMs: 5_000 });
  await assertRejectsWithSinkError(sink.write(events(1, "refused")), false, /ACCESS_REFUSED/);
});

test(
  "rabbitmq source - a missing queue fails the run, naming it; declare: true creates it durable",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const queue = freshName("queue");
    const refused = fx.source({ url: BROKER_URL, queue });
    const outcome = await refused.settled;
    assert.ok(outcome instanceof Error, `run rejects, got ${String(outcome)}`);
    assert.match(
      outcome.message,
      new RegExp(`queue "${queue}" does not exist: declare it, or set declare: true`),
    );
    await refused.stop();

    fx.forget("queue", queue);
    const declaring = fx.source({ url: BROKER_URL, queue, declare: true });
    // The queue appears once the source declared it; then what is published there arrives.
    const deadline = Date.now() + 5_000;
    while (!(await fx.queueExists(queue))) {
      if (Date.now() > deadline) assert.fail("the source did not declare the queue");
      await sleep(20);
    }
    assert.equal(
      await fx.queueExists(queue, { durable: true }),
      true,
      "declared durable (a non-durable queue refuses this declare)",
    );
    await publish(fx.channel, queue, [JSON.stringify(events(1, "declared")[0])]);
    await declaring.waitFor(1);
    assert.equal(declaring.received[0]?.id, "declared-0");
  },
);

test(
  "rabbitmq source - raw messages keep their message id and publish time; binary bodies become data_base64",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const queue = await fx.queue();
    await publish(fx.channel, queue, ['{"order":7}'], {
      messageId: "order-7",
      timestamp: 1_700_000_000,
    });
    await publish(fx.channel, queue, [Buffer.from([0xff, 0x00, 0xfe])], {
      contentType: "application/x-thing",
    });
    // Two identical messages without a message id: RabbitMQ gives nothing to tell them apart.
    await publish(fx.channel, queue, ["same", "same"]);
    const run = fx.source({ url: BROKER_URL, queue });
    await run.waitFor(4);
    const [withId, binary, same1, same2] = run.received;
    assert.deepEqual(withId, {
      specversion: "1.0",
      id: "order-7",
      source: `relaybus.rabbitmq/${queue}`,
      type: "relaybus.rabbitmq.message",
      time: "2023-11-14T22:13:20.000Z",
      datacontenttype: "application/json",
      data: { order: 7 },
    });
    assert.equal(binary?.data_base64, Buffer.from([0xff, 0x00, 0xfe]).toString("base64"));
    assert.equal(binary?.datacontenttype, "application/x-thing");
    assert.equal(binary?.data, undefined);
    assert.match(binary?.id ?? "", /^[0-9a-f]{64}$/);
    assert.equal(same1?.data, "same");
    assert.equal(
      same1?.id,
      same2?.id,
      "identical messages without a message id share an id (the documented limit)",
    );
    assert.notEqual(same1?.id, binary?.id);
  },
);

test(
  "rabbitmq source - backlog counts the messages not handed over yet, and reading ahead stops at the prefetch",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const queue = await fx.queueHolding(events(30, "backlog"));
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    // Two batches of 5 stay in the sink, which is all the prefetch (10) lets out: 20 stay ready.
    const run = fx.source(
      { url: BROKER_URL, queue, prefetch: 10 },
      { maxBatchEvents: 5, handle: () => held },
    );
    await run.waitFor(5);
    const deadline = Date.now() + 5_000;
    let backlog = await run.source.backlog?.();
    while (backlog !== 20 && Date.now() < deadline) {
      await sleep(50);
      backlog = await run.source.backlog?.();
    }
    assert.equal(backlog, 20);
    assert.equal(run.received.length, 10, "read ahead as far as the prefetch, no further");
    release();
    await run.waitFor(30);
    assert.ok(run.batches.every((b) => b.events.length <= 5));
  },
);

test(
  "rabbitmq source - a batch the stream fails ends the run unacknowledged, and the next run gets it first, in order",
  { skip },
  async (t) => {
    const fx = await fixture(t);
    const queue = await fx.queueHolding(events(8, "retry"));
    const failing = fx.source(
      { url: BROKER_URL, queue },
      { maxBatchEvents: 3, handle: () => Promise.reject(new Error("sink down")) },
    );
    const outcome = await failing.settled;
    assert.ok(
      outcome instanceof Error && outcome.message === "sink down",
      `run rejects with the batch's error, got ${String(outcome)}`,
    );
    // Later batches may have been read ahead before the first was refused; none was acknowledged.
    assert.deepEqual(
      failing.received.slice(0, 3).map((e) => e.id),
      ["retry-0", "retry-1", "retry-2"],
    );
    await failing.stop();
    const again = fx.source({ url: BROKER_URL, queue }, { maxBatchEvents: 3 });
    await again.waitFor(8);
    assert.deepEqual(
      again.received.map((e) => e.id),
      events(8, "retry").map((e) => e.id),
    );
  },
);
