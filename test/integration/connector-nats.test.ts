/**
 * What the shared conformance tests cannot say about the NATS JetStream connectors, against
 * the local nats-server: the sink stores a batch written twice once (Nats-Msg-Id), sends
 * binary mode with `format: "data"`, and classifies a too-large message and a missing server;
 * the source hands over what is published while it runs, gives refused batches back first, in
 * order and at once, filters subjects, starts a new durable where asked, counts its backlog
 * (without what it handed over) and names a missing stream; the schemas refuse bad logins.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { Ajv } from "ajv";
import { connect, StorageType, type NatsConnection, type StoredMsg } from "nats";
import type { Sink } from "../../connectors/index.js";
import {
  natsSink,
  natsSource,
  type NatsSinkConfig,
  type NatsSourceConfig,
} from "../../connectors/nats/index.js";
import type { CloudEvent } from "../../src/types.js";
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

const SERVER_URL = LOCAL_SERVICES.nats.url;
const skip = (await requireService("nats")) ?? false;
const WAIT_MS = 10_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function events(count: number, tag: string): CloudEvent[] {
  return testEvents(count, tag, { type: "nats.test", time: "2024-05-06T07:08:09Z" });
}

interface Fixture {
  /** A fresh stream capturing `<base>.>`, deleted after the test; `subject` is `<base>.events`. */
  stream(options?: {
    maxMsgSize?: number;
  }): Promise<{ name: string; base: string; subject: string }>;
  publish(subject: string, payloads: readonly string[]): Promise<void>;
  /** Publishes each event as a structured-mode CloudEvent. */
  publishEvents(subject: string, published: readonly CloudEvent[]): Promise<void>;
  /** Resolves once `stream` has the durable consumer `durable` (a source creates it as it starts). */
  consumerCreated(stream: string, durable: string): Promise<void>;
  /** Every message of `stream`, in order. */
  messages(stream: string): Promise<StoredMsg[]>;
  sink(config: NatsSinkConfig): Sink;
  /** A run of the source, stopped after the test; `run` may fail. */
  source(
    config: NatsSourceConfig,
    options?: Pick<SourceRunOptions, "maxBatchEvents" | "confirm">,
  ): SourceRun;
}

/** Connectors, streams and the test's connection are closed after the test, which then checks nothing is left open. */
async function fixture(t: TestContext): Promise<Fixture> {
  const nc: NatsConnection = await connect({ servers: SERVER_URL });
  const jsm = await nc.jetstreamManager();
  const streams: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
    for (const name of streams) await jsm.streams.delete(name).catch(() => {});
    await nc.close();
    await assertNothingOpen();
  });
  const fx: Fixture = {
    async stream(options = {}) {
      const suffix = randomBytes(5).toString("hex");
      const name = `relaybus_test_${suffix}`;
      const base = `relaybus.test.${suffix}`;
      await jsm.streams.add({
        name,
        subjects: [`${base}.>`],
        storage: StorageType.Memory,
        max_msg_size: options.maxMsgSize ?? -1,
      });
      streams.push(name);
      return { name, base, subject: `${base}.events` };
    },
    async publish(subject, payloads) {
      const js = nc.jetstream();
      for (const payload of payloads) await js.publish(subject, payload);
    },
    async publishEvents(subject, published) {
      await fx.publish(
        subject,
        published.map((e) => JSON.stringify(e)),
      );
    },
    async consumerCreated(stream, durable) {
      const deadline = Date.now() + WAIT_MS;
      while (
        !(await jsm.consumers.info(stream, durable).then(
          () => true,
          () => false,
        ))
      ) {
        assert.ok(Date.now() < deadline, "the source creates its durable consumer");
        await sleep(20);
      }
    },
    async messages(stream) {
      const { state } = await jsm.streams.info(stream);
      const held: StoredMsg[] = [];
      for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++)
        held.push(await jsm.streams.getMessage(stream, { seq }));
      return held;
    },
    sink(config) {
      const sink = natsSink.create(config, sinkContext({ streamName: "it" }));
      closers.push(() => sink.close());
      return sink;
    },
    source(config, options = {}) {
      const run = runSource(natsSource, config, {
        ...options,
        streamName: "it",
        waitMs: WAIT_MS,
        runMayFail: true,
      });
      closers.push(run.stop);
      return run;
    },
  };
  return fx;
}

test("nats sink - writing the same batch twice stores it once", { skip }, async (t) => {
  const f = await fixture(t);
  const { name, subject } = await f.stream();
  const sink = f.sink({ servers: SERVER_URL, subject });
  const batch = events(3, "twice");
  await sink.write(batch);
  await sink.write(batch);
  const held = await f.messages(name);
  assert.deepEqual(
    held.map((m) => (m.json() as CloudEvent).id),
    ["twice-0", "twice-1", "twice-2"],
  );
  assert.equal(held[0]?.header.get("Nats-Msg-Id"), "twice-0");
  assert.equal(held[0]?.header.get("content-type"), "application/cloudevents+json");
});

test(
  "nats sink - format data sends the data with the attributes in ce- headers, which the source reads back",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const { name, subject } = await f.stream();
    const event: CloudEvent = {
      ...events(1, "binary")[0]!,
      subject: "orders/7 é",
      tenant: "acme",
      data: { total: 12.5, note: "é ✓" },
    };
    await f.sink({ servers: SERVER_URL, subject, format: "data" }).write([event]);
    const [stored] = await f.messages(name);
    assert.deepEqual(stored?.json(), { total: 12.5, note: "é ✓" });
    assert.equal(stored?.header.get("ce-id"), "binary-0");
    assert.equal(
      stored?.header.get("ce-subject"),
      "orders/7%20%C3%A9",
      "percent-encoded as the HTTP binding says",
    );
    const run = f.source({ servers: SERVER_URL, stream: name });
    await run.waitFor(1);
    assert.deepEqual(run.received[0], event);
  },
);

test(
  "nats sink - a message over the stream's size limit fails permanently",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const { name, subject } = await f.stream({ maxMsgSize: 64 });
    const sink = f.sink({ servers: SERVER_URL, subject });
    await assertRejectsWithSinkError(
      sink.write(events(1, "large")),
      false,
      /message size exceeds maximum/,
    );
    assert.equal((await f.messages(name)).length, 0);
  },
);

test("nats sink - a server that is not there fails retryably", { skip }, async (t) => {
  const f = await fixture(t);
  // A port that was just free: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const sink = f.sink({
    servers: `nats://127.0.0.1:${port}`,
    subject: "relaybus.test.nowhere",
    timeoutMs: 1_000,
  });
  await assertRejectsWithSinkError(sink.write(events(1, "nowhere")), true);
});

test(
  "nats source - hands over messages published while it runs, raw ones wrapped",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const { name, subject } = await f.stream();
    const run = f.source({ servers: SERVER_URL, stream: name }, { maxBatchEvents: 4 });
    // The consumer exists once the run started; publish only then, in three rounds.
    await f.consumerCreated(name, "relaybus-it");
    await f.publish(subject, ["first", '{"n":2}']);
    await run.waitFor(2);
    await sleep(200);
    await f.publishEvents(subject, events(5, "structured"));
    await run.waitFor(7);
    await f.publish(subject, ["last"]);
    await run.waitFor(8);
    assert.deepEqual(
      run.received.map((e) => e.data),
      ["first", { n: 2 }, ...events(5, "structured").map((e) => e.data), "last"],
    );
    assert.deepEqual(
      run.received.slice(2, 7),
      events(5, "structured"),
      "structured CloudEvents pass unchanged",
    );
    const wrapped = run.received[0]!;
    assert.equal(wrapped.id, `${name}:1`);
    assert.equal(wrapped.source, `relaybus.nats/${name}`);
    assert.equal(wrapped.type, "relaybus.nats.message");
    assert.equal(wrapped.subject, subject);
    assert.ok(
      Math.abs(Date.parse(wrapped.time ?? "") - Date.now()) < 60_000,
      `time ${wrapped.time} is the stream's`,
    );
    assert.equal(run.received[7]?.id, `${name}:8`);
    assert.ok(run.batches.every((b) => b.events.length >= 1 && b.events.length <= 4));
  },
);

test(
  "nats source - batches it was refused come back first and in order, before those it held",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const { name, subject } = await f.stream();
    await f.publishEvents(subject, events(10, "order"));
    const first = f.source(
      { servers: SERVER_URL, stream: name },
      { maxBatchEvents: 3, confirm: () => false },
    );
    await first.waitFor(3);
    await sleep(200);
    // Two batches handed over (the read-ahead); the rest delivered to the client and held.
    assert.equal(first.batches.length, 2);
    await first.stop();
    const second = f.source({ servers: SERVER_URL, stream: name }, { maxBatchEvents: 100 });
    await second.waitFor(10);
    await sleep(300);
    assert.deepEqual(
      second.received.map((e) => e.id),
      events(10, "order").map((e) => e.id),
    );
  },
);

test(
  "nats source - a batch refused at the stop comes back at once, not after the ack wait",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const { name, subject } = await f.stream();
    await f.publishEvents(subject, events(5, "refused"));
    // The pull asks for more than the stream holds, so it is still open on the server when
    // the run stops; the ack wait is far longer than the test waits.
    const config = { servers: SERVER_URL, stream: name, ackWaitMs: 120_000 };
    const first = f.source(config, { maxBatchEvents: 100, confirm: () => false });
    await first.waitFor(5);
    await first.stop();
    const second = f.source(config);
    await second.waitFor(5);
    assert.deepEqual(
      second.received.map((e) => e.id),
      events(5, "refused").map((e) => e.id),
    );
  },
);

test("nats source - filterSubject hands over only the subjects it matches", { skip }, async (t) => {
  const f = await fixture(t);
  const { name, base } = await f.stream();
  await f.publish(`${base}.orders`, ["order 1"]);
  await f.publish(`${base}.refunds`, ["refund 1"]);
  await f.publish(`${base}.orders`, ["order 2"]);
  const run = f.source({ servers: SERVER_URL, stream: name, filterSubject: `${base}.orders` });
  await run.waitFor(2);
  await sleep(200);
  assert.deepEqual(
    run.received.map((e) => e.data),
    ["order 1", "order 2"],
  );
  assert.deepEqual(
    run.received.map((e) => e.id),
    [`${name}:1`, `${name}:3`],
    "ids keep the stream sequence",
  );
});

test(
  "nats source - deliverPolicy new starts a new durable after what the stream held",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const { name, subject } = await f.stream();
    await f.publish(subject, ["old"]);
    const run = f.source({
      servers: SERVER_URL,
      stream: name,
      durable: "fresh",
      deliverPolicy: "new",
    });
    await f.consumerCreated(name, "fresh");
    await f.publish(subject, ["new"]);
    await run.waitFor(1);
    await sleep(200);
    assert.deepEqual(
      run.received.map((e) => e.data),
      ["new"],
    );
  },
);

test(
  "nats source - backlog counts what waits in the stream and was not handed over",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const { name, subject } = await f.stream();
    await f.publish(subject, ["a", "b", "c", "d", "e"]);
    const run = f.source(
      { servers: SERVER_URL, stream: name },
      { maxBatchEvents: 2, confirm: () => false },
    );
    // Two batches of two handed over (the read-ahead), then nothing more until they are confirmed.
    await run.waitFor(4);
    await sleep(200);
    assert.equal(run.received.length, 4);
    assert.equal(
      await run.source.backlog?.(),
      1,
      "the stream counts what it was handed; the source counts the rest",
    );
    await run.stop();
    const confirming = f.source({ servers: SERVER_URL, stream: name });
    await confirming.waitFor(5);
    const deadline = Date.now() + WAIT_MS;
    while ((await confirming.source.backlog?.()) !== 0) {
      assert.ok(Date.now() < deadline, "the backlog drops to 0 once everything is acknowledged");
      await sleep(50);
    }
  },
);

test(
  "nats source - a missing stream ends the run with an error that names it",
  { skip },
  async (t) => {
    const f = await fixture(t);
    const run = f.source({ servers: SERVER_URL, stream: "relaybus_test_missing" });
    const error = await run.settled;
    assert.ok(error instanceof Error, String(error));
    assert.match(error.message, /stream relaybus_test_missing does not exist/);
  },
);

test("nats connectors - the config schemas refuse half a login, a login with a token, and wildcards to publish to", () => {
  const ajv = new Ajv({ allErrors: true });
  const sinkValid = ajv.compile(natsSink.configSchema);
  const sourceValid = ajv.compile(natsSource.configSchema);
  assert.equal(
    sinkValid({ subject: "a.b", user: "u", pass: "p" }),
    true,
    JSON.stringify(sinkValid.errors),
  );
  assert.equal(sinkValid({ subject: "a.b", user: "u" }), false);
  assert.equal(sinkValid({ subject: "a.b", user: "u", pass: "p", token: "t" }), false);
  assert.equal(sinkValid({ subject: "a.*" }), false);
  assert.equal(sinkValid({ subject: "a..b" }), false);
  assert.equal(
    sourceValid({ stream: "S", token: "t", servers: ["nats://a:4222", "nats://b:4222"] }),
    true,
  );
  assert.equal(sourceValid({ stream: "S", pass: "p" }), false);
  assert.equal(sourceValid({ stream: "S", durable: "has.dot" }), false);
});
