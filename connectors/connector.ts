/**
 * The connector interface. A connector is a definition: a name, a kind (source or sink), a
 * JSON Schema for its configuration, and `create(config, context)`. The context is small on
 * purpose: a connector never reaches into the log or the dispatcher, so it can be written,
 * tested and replaced on its own. What it may do with Relaybus itself (read or publish to a
 * bus) goes through {@link RelaybusPort}, which the stream layer provides.
 */
import type { Dispatcher } from "undici";
import type { Clock, CloudEvent, Logger } from "../src/types.js";

/** An event read from a bus, with its position there. */
export interface BusRecord {
  /** Position in the bus, from 1. */
  offset: number;
  event: CloudEvent;
  /** The event's size as the log measured it (UTF-8 bytes of its structured JSON). */
  sizeBytes: number;
}

/**
 * The few things a connector may ask of the Relaybus it runs in: the bus source reads a
 * bus's log, the bus sink publishes to a bus. Everything else about the log stays hidden.
 */
export interface RelaybusPort {
  /** Whether the bus exists now. */
  busExists(bus: string): boolean;
  /**
   * Publishes events to a bus as ingress does (validated, sized, metered, durable when the
   * promise resolves). Rejects with a {@link SinkError} (retryable or not) when refused.
   */
  publish(bus: string, events: readonly CloudEvent[]): Promise<void>;
  /** Up to `limit` events of a bus after `afterOffset`, in offset order. */
  read(bus: string, afterOffset: number, limit: number): Promise<BusRecord[]>;
  /** The bus's highest offset (0 when empty). */
  lastOffset(bus: string): Promise<number>;
  /**
   * Resolves once the bus holds an event after `afterOffset`, or when `signal` aborts,
   * or after `timeoutMs`; whichever comes first. Never rejects.
   */
  waitForEvents(bus: string, afterOffset: number, signal: AbortSignal, timeoutMs: number): Promise<void>;
}

/** What every connector is given. */
export interface ConnectorContext {
  logger: Logger;
  clock: Clock;
  /** Aborted when the connector must stop. */
  signal: AbortSignal;
  /** The stream the connector serves (for consumer names, ids, log lines). */
  streamName: string;
  /** Relaybus's own buses. */
  relaybus: RelaybusPort;
  /**
   * The dispatcher for HTTP requests to addresses a stream's definition names (undici's
   * `dispatcher` option). Relaybus's applies its outbound policy (`delivery.outbound`: no
   * loopback, private or link-local addresses unless allowed), judged on the address each
   * connection is opened to. Absent (tests of a connector alone), undici's global one.
   */
  httpDispatcher?: Dispatcher;
}

/** What a source is given besides the common context. */
export interface SourceContext extends ConnectorContext {
  /**
   * The position saved with the last batch the sink confirmed, as the source returned it in
   * {@link SourceBatch.position}; undefined on the first run. Sources whose broker keeps the
   * position (consumer groups, durable consumers, queues) ignore it.
   */
  position: string | undefined;
  /** The most events the stream wants in one batch. */
  maxBatchEvents: number;
  /**
   * How long a source may hold a partial batch, waiting for more events, before handing it
   * over (ms). A source that has events never waits longer than this to hand them over.
   */
  maxBatchWaitMs: number;
}

/** One batch a source hands over. */
export interface SourceBatch {
  /**
   * The events, in the source's order; at most `maxBatchEvents`. Empty only in a batch that
   * moves the position alone (a source marking where a new stream starts reading).
   */
  events: readonly CloudEvent[];
  /**
   * Each event's size (UTF-8 bytes of its structured JSON), when the source knows it already
   * (the bus source: as the log measured it); the stream measures the events otherwise.
   */
  sizesBytes?: readonly number[];
  /**
   * Where to resume after this batch, for sources whose position Relaybus keeps (the bus, a
   * table, a file, a schedule). Saved only once the sink confirmed this batch and every
   * batch before it, and given back as {@link SourceContext.position} on the next run.
   */
  position?: string;
}

/** A source reads events from somewhere and hands them over in batches. */
export interface Source {
  /**
   * Calls `handle` with each batch, in order. `handle` resolves once the sink confirmed the
   * batch; only then may the source acknowledge it to its broker. A source may call `handle`
   * again before an earlier call resolved (to read ahead); batches are written and resolved in
   * call order. `handle` rejects when the stream stops or fails: the source must then not
   * acknowledge that batch, so that it is read again on the next run (at least once).
   * Resolves when `context.signal` aborts; rejects when the source cannot go on (the stream
   * retries it with backoff, then marks itself failed).
   */
  run(handle: (batch: SourceBatch) => Promise<void>): Promise<void>;
  /**
   * How many events wait at the source and were not handed over yet, when the source can
   * tell cheaply; the CU scaler grows capacity with it. Undefined when unknown.
   */
  backlog?(): Promise<number | undefined>;
  /** Releases connections; called after `run` settled. Idempotent. */
  close(): Promise<void>;
}

/** A sink writes batches of events somewhere. */
export interface Sink {
  /**
   * Writes the batch. Resolves once the destination has confirmed all of it, in order;
   * rejects with a {@link SinkError} otherwise, saying whether a retry may succeed. A retried
   * batch may have been partly written before (at least once): sinks that can, deduplicate
   * on the event id.
   */
  write(events: readonly CloudEvent[]): Promise<void>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/** How a sink failure should be treated. */
export class SinkError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SinkError";
    this.retryable = options.retryable;
  }
}

interface ConnectorDefinitionBase<Config> {
  /** Unique name, used in stream definitions (`webhook`, `nats`, ...). */
  name: string;
  description: string;
  /** JSON Schema of `Config` (draft-07, `additionalProperties: false`); validated before `create`. */
  configSchema: object;
  /**
   * Checks what the schema cannot say (an expression's grammar, a time zone), on a config the
   * schema accepted: the problems, each with a JSON pointer into the config. Called when a
   * stream is defined, so a bad config is refused then rather than when the stream runs.
   */
  check?(config: Config): { pointer: string; message: string }[];
  /** Narrows a validated config to its type (a schema-checked cast). */
  readonly _config?: Config;
}

export interface SinkDefinition<Config = unknown> extends ConnectorDefinitionBase<Config> {
  kind: "sink";
  create(config: Config, context: ConnectorContext): Sink;
}

export interface SourceDefinition<Config = unknown> extends ConnectorDefinitionBase<Config> {
  kind: "source";
  create(config: Config, context: SourceContext): Source;
}

export type ConnectorDefinition = SinkDefinition<never> | SourceDefinition<never>;
