/**
 * Conformance harnesses of the redis source and sink, against the local Redis server: each
 * setUp uses a stream key of its own (random), which close() deletes (with its groups).
 *
 * The sink's failures are real Redis failures, made to hit exactly one write. Both use
 * `CLIENT PAUSE ... WRITE`, which holds every client's writes (the sink's EXEC among them)
 * until `CLIENT UNPAUSE`, and releases held clients in the order they arrived:
 * - retryable: a server that stops answering. The pause holds the sink's batch past its
 *   `timeoutMs`; the sink gives up (a timeout: retryable) and closes that connection, which
 *   makes Redis discard the held transaction; then the harness unpauses.
 * - permanent: WRONGTYPE. The harness moves the stream aside and puts a string at its key;
 *   once the sink's EXEC is held, a second connection queues the repair (delete the string,
 *   move the stream back) behind it, and the unpause runs the two in that order: the batch
 *   fails against the string, and the key is a stream again before any later write. A retry
 *   cannot fix a key that holds another type, which is why the sink classes it permanent.
 * The pause holds every client of the server for that moment (under a second): the other
 * tests using this Redis only wait. It expires by itself should the harness die holding it.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { SinkDefinition, SourceDefinition } from "../../../connectors/index.js";
import { redisSink, redisSource } from "../../../connectors/redis/index.js";
import type { CloudEvent } from "../../../src/types.js";
import { LOCAL_SERVICES, requireService } from "../../helpers/local-services.js";
import type { SinkHarness, SourceHarness } from "../connector-harness.js";

const REDIS_URL = LOCAL_SERVICES.redis.url;
/** What the conformance tests name the stream; the sink puts it in its connection name. */
const STREAM_NAME = "conformance";
/** The sink's batch timeout in these tests: how long the retryable failure holds the server. */
const SINK_TIMEOUT_MS = 1_000;
/** The longest a pause may last if the harness never lifts it. */
const PAUSE_LIMIT_MS = 5_000;

const freshKey = (kind: string) => `relaybus-test:${kind}:${randomUUID()}`;

export const sourceHarness: SourceHarness = {
  definition: redisSource as SourceDefinition<never>,
  skipReason: () => requireService("redis"),
  async setUp() {
    const key = freshKey("source");
    const admin = new Redis(REDIS_URL);
    return {
      config: { url: REDIS_URL, stream: key, blockMs: 1_000 },
      invalidConfig: { url: REDIS_URL, stream: key, startId: "latest" },
      async produce(events) {
        const pipeline = admin.pipeline();
        for (const event of events)
          pipeline.xadd(key, "*", "id", event.id, "event", JSON.stringify(event));
        assertNoErrors(await pipeline.exec());
      },
      // One field each: strings as they are (not JSON: the source hands them over as strings),
      // anything else as its JSON.
      async produceRaw(payloads) {
        const pipeline = admin.pipeline();
        for (const payload of payloads) {
          pipeline.xadd(
            key,
            "*",
            "payload",
            typeof payload === "string" ? payload : JSON.stringify(payload),
          );
        }
        assertNoErrors(await pipeline.exec());
      },
      async close() {
        await admin.del(key);
        await admin.quit();
      },
    };
  },
};

export const sinkHarness: SinkHarness = {
  definition: redisSink as SinkDefinition<never>,
  skipReason: () => requireService("redis"),
  async setUp() {
    const key = freshKey("sink");
    const aside = `${key}:aside`;
    const sinkName = `relaybus-sink:${STREAM_NAME}:${key}`;
    const repairName = `relaybus-test-repair:${key}`;
    const admin = new Redis(REDIS_URL);
    const repairer = new Redis(REDIS_URL, { connectionName: repairName });
    /** The failure under way, until the server is back to normal. */
    let failing: Promise<void> = Promise.resolve();

    const pause = () => admin.call("CLIENT", "PAUSE", String(PAUSE_LIMIT_MS), "WRITE");
    const unpause = () => admin.call("CLIENT", "UNPAUSE");
    /** Whether a client of that name waits on the pause. */
    async function held(name: string): Promise<boolean> {
      const list = String(await admin.call("CLIENT", "LIST"));
      return list
        .split("\n")
        .some((line) => line.includes(` name=${name} `) && /\bflags=\w*b/.test(line));
    }

    return {
      config: { url: REDIS_URL, stream: key, timeoutMs: SINK_TIMEOUT_MS },
      invalidConfig: { url: REDIS_URL, stream: key, format: "xml", maxLength: 0 },
      async readBack() {
        await failing;
        const entries = await admin.xrange(key, "-", "+");
        return entries.map(([, fields]) => JSON.parse(fieldValue(fields, "event")) as CloudEvent);
      },
      async failNext(retryable) {
        await failing;
        if (retryable) {
          await pause();
          failing = (async () => {
            try {
              await until(() => held(sinkName), "the sink's write to arrive");
              await until(async () => !(await held(sinkName)), "the sink to give up on its write");
            } finally {
              await unpause();
            }
          })();
          // Fail loudly in the next call (readBack, close...), not as an unhandled rejection.
          failing.catch(() => {});
          return;
        }
        const hadStream = (await admin.exists(key)) === 1;
        if (hadStream) await admin.rename(key, aside);
        await admin.set(key, "not a stream");
        await pause();
        const repair = () => {
          const transaction = repairer.multi().del(key);
          return (hadStream ? transaction.rename(aside, key) : transaction).exec();
        };
        failing = (async () => {
          let repaired: ReturnType<typeof repair> | undefined;
          try {
            await until(() => held(sinkName), "the sink's write to arrive");
            repaired = repair();
            await until(() => held(repairName), "the repair to queue behind the sink's write");
          } finally {
            await unpause();
          }
          assertNoErrors(await repaired);
        })();
        failing.catch(() => {});
      },
      async close() {
        try {
          await failing;
        } finally {
          await admin.del(key, aside);
          await Promise.all([admin.quit(), repairer.quit()]);
        }
      },
    };
  },
};

/** Polls `condition` until it holds; fails after a few seconds saying what did not happen. */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + PAUSE_LIMIT_MS - 1_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`redis harness: waited in vain for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function fieldValue(fields: readonly string[], name: string): string {
  const at = fields.findIndex((field, i) => i % 2 === 0 && field === name);
  if (at < 0) throw new Error(`entry without a ${name} field: ${JSON.stringify(fields)}`);
  return fields[at + 1] as string;
}

function assertNoErrors(results: [Error | null, unknown][] | null | undefined): void {
  const error = results?.find(([e]) => e !== null)?.[0];
  if (error) throw error;
  if (results === null) throw new Error("the transaction was aborted");
}
