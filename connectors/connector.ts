/**
 * The connector interface. A connector is a definition: a name, a kind (source or sink), a
 * JSON Schema for its configuration, and `create(config, context)`. The context is small on
 * purpose: a connector never reaches into the log or the dispatcher, so it can be written,
 * tested and replaced on its own.
 */
import type { Clock, CloudEvent, Logger } from "../src/types.js";

/** What every connector is given. */
export interface ConnectorContext {
  logger: Logger;
  clock: Clock;
  /** Aborted when the connector must stop. */
  signal: AbortSignal;
}

/** A sink writes batches of events somewhere. */
export interface Sink {
  /**
   * Writes the batch. Resolves once the destination has confirmed all of it; rejects with a
   * {@link SinkError} otherwise, saying whether a retry may succeed.
   */
  write(events: readonly CloudEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** A source reads events from somewhere and hands them over in batches. */
export interface Source {
  /**
   * Calls `handle` with each batch; the source moves its position past a batch only after
   * `handle` resolved (at least once). Resolves when `context.signal` aborts.
   */
  run(handle: (events: readonly CloudEvent[]) => Promise<void>): Promise<void>;
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
  /** Unique name, used in stream and target definitions (`webhook`, `nats`, ...). */
  name: string;
  description: string;
  /** JSON Schema of `Config`; validated before `create` is called. */
  configSchema: object;
  /** Narrows a validated config to its type (a schema-checked cast). */
  readonly _config?: Config;
}

export interface SinkDefinition<Config = unknown> extends ConnectorDefinitionBase<Config> {
  kind: "sink";
  create(config: Config, context: ConnectorContext): Sink;
}

export interface SourceDefinition<Config = unknown> extends ConnectorDefinitionBase<Config> {
  kind: "source";
  create(config: Config, context: ConnectorContext): Source;
}

export type ConnectorDefinition = SinkDefinition<never> | SourceDefinition<never>;
