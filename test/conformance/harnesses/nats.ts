/**
 * Conformance harnesses of the NATS JetStream sink and source, against the local nats-server.
 * Each setUp makes its own stream (random name) capturing its own subject, and close()
 * deletes it.
 *
 * The sink reaches the server through a TCP fault proxy, so that failNext can break the
 * sink's next publish in a real way without reaching into the sink:
 * - retryable: the proxy cuts the connection as the publish leaves the client, so the
 *   message never arrives and its ack never comes: a lost connection, which a retry fixes
 *   once the client reconnected (the sink waits for that before its next publish).
 * - permanent: the stream stops capturing the subject, so the server answers the publish
 *   "no responders" (503): no stream for the subject, which a retry does not fix. The proxy
 *   then holds the next publish until the stream captures the subject again, so the write
 *   after the failure succeeds; without the hold, restoring the stream would race it.
 * Weighed and not used: a stream full with discard-new (JetStream's 503, retryable: room may
 * come back) frees no room by itself, so the write after it would fail too; a message over
 * the stream's max_msg_size (JetStream's 400, permanent) is the integration test's case.
 */
import { connect, StorageType, type JetStreamManager, type NatsConnection } from "nats";
import { randomBytes } from "node:crypto";
import type { SinkDefinition, SourceDefinition } from "../../../connectors/index.js";
import { natsSink, natsSource } from "../../../connectors/nats/index.js";
import type { CloudEvent, JsonValue } from "../../../src/types.js";
import { LOCAL_SERVICES, requireService } from "../../helpers/local-services.js";
import { startTcpFaultProxy } from "../../helpers/tcp-fault-proxy.js";
import type { SinkHarness, SourceHarness } from "../connector-harness.js";

/** A JetStream stream of its own, on a subject of its own. */
interface TestStream {
  nc: NatsConnection;
  jsm: JetStreamManager;
  name: string;
  subject: string;
  /** Every message of the stream, in stream order, parsed as JSON. */
  readAll(): Promise<CloudEvent[]>;
  /** Deletes the stream and closes the connection. */
  close(): Promise<void>;
}

async function createTestStream(): Promise<TestStream> {
  const suffix = randomBytes(6).toString("hex");
  const name = `relaybus_conformance_${suffix}`;
  const subject = `relaybus.conformance.${suffix}`;
  const nc = await connect({ servers: LOCAL_SERVICES.nats.url });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name, subjects: [subject], storage: StorageType.Memory });
  return {
    nc,
    jsm,
    name,
    subject,
    async readAll() {
      const { state } = await jsm.streams.info(name);
      const held: CloudEvent[] = [];
      for (let seq = state.first_seq; state.messages > 0 && seq <= state.last_seq; seq++) {
        const message = await jsm.streams.getMessage(name, { seq });
        held.push(JSON.parse(new TextDecoder().decode(message.data)) as CloudEvent);
      }
      return held;
    },
    async close() {
      await jsm.streams.delete(name).catch(() => {});
      await nc.close();
    },
  };
}

export const sinkHarness: SinkHarness = {
  definition: natsSink as SinkDefinition<never>,
  skipReason: () => requireService("nats"),
  async setUp() {
    const stream = await createTestStream();
    const proxy = await startTcpFaultProxy(LOCAL_SERVICES.nats.port);
    // What the client sends to start a publish to the sink's subject.
    const publishMarker = `HPUB ${stream.subject} `;
    const captureSubject = (subjects: string[]) =>
      stream.jsm.streams.update(stream.name, { subjects });
    return {
      // Above the client's 2 s reconnect wait: the write after the cut waits for the reconnect.
      config: {
        servers: `nats://127.0.0.1:${proxy.port}`,
        subject: stream.subject,
        timeoutMs: 5_000,
      },
      invalidConfig: { servers: [], subject: "orders.*", format: "xml" },
      readBack: () => stream.readAll(),
      async failNext(retryable) {
        if (retryable) {
          void proxy.cutAt(publishMarker);
          return;
        }
        await captureSubject([`${stream.subject}.parked`]);
        void proxy.holdAt(publishMarker, 2, async () => {
          await captureSubject([stream.subject]);
        });
      },
      async close() {
        await proxy.close();
        await stream.close();
      },
    };
  },
};

export const sourceHarness: SourceHarness = {
  definition: natsSource as SourceDefinition<never>,
  skipReason: () => requireService("nats"),
  async setUp() {
    const stream = await createTestStream();
    const js = stream.nc.jetstream();
    return {
      config: { servers: LOCAL_SERVICES.nats.url, stream: stream.name },
      invalidConfig: { stream: "not.a.stream.name", deliverPolicy: "oldest" },
      async produce(events) {
        for (const event of events) await js.publish(stream.subject, JSON.stringify(event));
      },
      async produceRaw(payloads: readonly JsonValue[]) {
        // Text goes as plain bytes, to be wrapped as a string; the rest as JSON.
        for (const payload of payloads)
          await js.publish(
            stream.subject,
            typeof payload === "string" ? payload : JSON.stringify(payload),
          );
      },
      close: () => stream.close(),
    };
  },
};
