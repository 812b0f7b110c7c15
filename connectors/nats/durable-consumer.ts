/**
 * The source's durable pull consumer: created on the first run, brought to the config on
 * later ones. Its place in the stream is JetStream's, which is what makes it durable: a
 * changed deliver policy does not move it, and a changed filter applies from where it is.
 */
import {
  AckPolicy,
  DeliverPolicy,
  NatsError,
  nanos,
  type ConsumerConfig,
  type JetStreamManager,
} from "nats";
import type { Logger } from "../../src/types.js";

/** What the source wants of its consumer. */
export interface DurableConsumerSpec {
  stream: string;
  durable: string;
  /** Empty for the whole stream. */
  filterSubject: string;
  deliverPolicy: "all" | "new";
  ackWaitMs: number;
}

/** JetStream API error codes acted on here. */
const JS_CONSUMER_NOT_FOUND = 10014;
const JS_STREAM_NOT_FOUND = 10059;

/** The default durable name for a Relaybus stream: characters NATS refuses in names become `_`. */
export function defaultDurableName(streamName: string): string {
  return `relaybus-${streamName}`.replace(/[^A-Za-z0-9_-]/g, "_");
}

function apiErrorCode(error: unknown): number | undefined {
  return error instanceof NatsError ? error.jsError()?.err_code : undefined;
}

/**
 * Creates the durable pull consumer (explicit acks), or brings an existing one to the spec's
 * ack wait and filter. Throws, naming the fix, when the stream is missing or the consumer
 * is one the source cannot use.
 */
export async function ensureDurableConsumer(
  jsm: JetStreamManager,
  spec: DurableConsumerSpec,
  logger: Logger,
): Promise<void> {
  const { stream, durable, filterSubject } = spec;
  const ackWait = nanos(spec.ackWaitMs);
  const deliverPolicy = spec.deliverPolicy === "all" ? DeliverPolicy.All : DeliverPolicy.New;
  let existing;
  try {
    existing = await jsm.consumers.info(stream, durable);
  } catch (error) {
    const code = apiErrorCode(error);
    if (code === JS_STREAM_NOT_FOUND) {
      throw new Error(`nats source: stream ${stream} does not exist; create it first`, {
        cause: error,
      });
    }
    if (code !== JS_CONSUMER_NOT_FOUND) throw error;
  }
  if (existing === undefined) {
    const wanted: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: deliverPolicy,
      ack_wait: ackWait,
      ...(filterSubject === "" ? {} : { filter_subject: filterSubject }),
    };
    await jsm.consumers.add(stream, wanted);
    return;
  }
  const found = existing.config;
  if (found.deliver_subject !== undefined || found.ack_policy !== AckPolicy.Explicit) {
    throw new Error(
      `nats source: consumer ${durable} on stream ${stream} is not a pull consumer with ` +
        `explicit acks; delete it or set another durable`,
    );
  }
  if (found.deliver_policy !== deliverPolicy) {
    logger.warn(
      "nats source: the durable consumer keeps its place; deliverPolicy is for new ones",
      {
        stream,
        durable,
      },
    );
  }
  if (found.ack_wait !== ackWait || (found.filter_subject ?? "") !== filterSubject) {
    await jsm.consumers.update(stream, durable, {
      ack_wait: ackWait,
      // No filter is an absent one: the client would put an empty one in the request subject.
      filter_subject: filterSubject === "" ? undefined : filterSubject,
    });
  }
}
