/**
 * Conformance harness of the HTTP source. The origin is a producer that behaves as a real one
 * must with this source: it POSTs, and retries whatever was not answered 200 (a 503, a dropped
 * connection, a port nobody listens on yet) until it is. That is how a batch the stream did not
 * confirm "comes again on the next run": the producer sends it again once the source listens.
 *
 * The source listens on a port the harness picks (a free one, found by listening on port 0),
 * since a stream's endpoint is configured with its port. The requests of one `produce` call go
 * out pipelined on one connection, so they arrive in order even while none is answered yet.
 */
import { createServer } from "node:net";
import { Client } from "undici";
import type { SourceDefinition } from "../../../connectors/index.js";
import { httpSource } from "../../../connectors/http/index.js";
import type { CloudEvent, JsonValue } from "../../../src/types.js";
import type { SourceHarness } from "../connector-harness.js";

/** How long a producer keeps retrying one call's requests before it gives up (ms). */
const PRODUCE_DEADLINE_MS = 30_000;
const RETRY_DELAY_MS = 50;

/** One request a producer sends until it is answered 200. */
export interface ProducedRequest {
  headers: Record<string, string>;
  body: string;
}

/** A port no one listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/**
 * A producer that retries: `send` returns at once and delivers in the background, in order;
 * `close` stops it and fails if a request got an answer other than 200, 503 or none.
 */
export function createRetryingProducer(url: string) {
  const { origin, pathname } = new URL(url);
  const running = new Set<Promise<void>>();
  const clients = new Set<Client>();
  const failures: string[] = [];
  let closed = false;

  const deliver = async (requests: readonly ProducedRequest[]): Promise<void> => {
    let remaining = [...requests];
    const deadline = Date.now() + PRODUCE_DEADLINE_MS;
    while (remaining.length > 0 && !closed && Date.now() < deadline) {
      const client = new Client(origin, { pipelining: remaining.length });
      clients.add(client);
      const statuses = await Promise.all(
        remaining.map((request) =>
          client
            .request({
              path: pathname,
              method: "POST",
              headers: request.headers,
              body: request.body,
              idempotent: true,
              blocking: false,
            })
            .then(async (response) => {
              await response.body.dump();
              return response.statusCode;
            })
            .catch(() => 0)
            .then((status) => {
              // undici itself would send the rest of a broken pipeline again on a new
              // connection, ahead of this one's retry: stop it, and retry them all in order.
              if (status !== 200) void client.destroy();
              return status;
            }),
        ),
      );
      clients.delete(client);
      await client.destroy();
      for (const status of statuses) {
        if (status !== 200 && status !== 503 && status !== 0)
          failures.push(`the source answered ${status}`);
      }
      // 503 and no answer (0) are retried; 200 is done; anything else was recorded above.
      remaining = remaining.filter((_, i) => statuses[i] === 503 || statuses[i] === 0);
      if (remaining.length > 0) await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    }
  };

  return {
    send(requests: readonly ProducedRequest[]): void {
      const delivery = deliver(requests).finally(() => running.delete(delivery));
      running.add(delivery);
    },
    async close(): Promise<void> {
      closed = true;
      await Promise.all([...clients].map((client) => client.destroy()));
      await Promise.all(running);
      if (failures.length > 0) throw new Error(`producer: ${failures.join("; ")}`);
    },
  };
}

export const sourceHarness: SourceHarness = {
  definition: httpSource as SourceDefinition<never>,
  async setUp() {
    const port = await freePort();
    const producer = createRetryingProducer(`http://127.0.0.1:${port}/events`);
    let rawCount = 0;
    return {
      config: { port, path: "/events" },
      invalidConfig: { port: 0, path: "events", extra: true },
      async produce(events: readonly CloudEvent[]) {
        producer.send([
          {
            headers: { "content-type": "application/cloudevents-batch+json" },
            body: JSON.stringify(events),
          },
        ]);
      },
      async produceRaw(payloads: readonly JsonValue[]) {
        // An id per payload, sent again with every retry: that is what keeps the wrapped ids stable.
        producer.send(
          payloads.map((payload) => ({
            headers: {
              "content-type": "application/json",
              "idempotency-key": `raw-${port}-${rawCount++}`,
            },
            body: JSON.stringify(payload),
          })),
        );
      },
      close: () => producer.close(),
    };
  },
};
