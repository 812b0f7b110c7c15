/**
 * What each connector contributes to the shared conformance tests: a harness that sets up a
 * real destination (for a sink) or a real origin (for a source) and reads it back or feeds it.
 * Harnesses live in `harnesses/<connector>.ts`, exporting `sinkHarness` and/or `sourceHarness`;
 * the conformance tests find them there, and fail when a registered connector has none.
 */
import type { RelaybusPort, SinkDefinition, SourceDefinition } from "../../connectors/index.js";
import type { Clock, CloudEvent, JsonValue } from "../../src/types.js";

/** A real destination a sink writes to. */
export interface Destination {
  config: unknown;
  /** A config the schema must refuse. */
  invalidConfig: unknown;
  /** The events the destination holds, in arrival order (as CloudEvents). */
  readBack(): Promise<CloudEvent[]>;
  /** Makes the next write fail, once; `retryable` says how the destination fails. Writes after it succeed. */
  failNext(retryable: boolean): Promise<void> | void;
  /** The port the sink is given (the bus sink needs one; others get a port that refuses). */
  relaybus?: RelaybusPort;
  close(): Promise<void>;
}

export interface SinkHarness {
  definition: SinkDefinition<never>;
  /** Why these tests are skipped on this machine (a server that cannot be reached), if they are. */
  skipReason?(): Promise<string | undefined>;
  setUp(): Promise<Destination>;
}

/** A real origin a source reads from. */
export interface Origin {
  config: unknown;
  /** A config the schema must refuse. */
  invalidConfig: unknown;
  /**
   * Puts the events at the origin, in order, as the source will find them (a CloudEvent in
   * structured JSON form, which the source passes through unchanged). An origin that makes
   * its own events (a schedule) makes as many and returns the ids the source will give them.
   */
  produce(events: readonly CloudEvent[]): Promise<void | { ids: string[] }>;
  /**
   * Puts raw payloads (not CloudEvents) at the origin, when the origin carries arbitrary
   * messages; the source wraps each in a CloudEvent whose id is stable across reads.
   */
  produceRaw?(payloads: readonly JsonValue[]): Promise<void>;
  /** The port the source is given (the bus source needs one). */
  relaybus?: RelaybusPort;
  /**
   * The clock the source is given, for an origin whose events come with time (a schedule):
   * its `produce` moves this clock on and returns the ids of the events that become due.
   */
  clock?: Clock;
  close(): Promise<void>;
}

export interface SourceHarness {
  definition: SourceDefinition<never>;
  skipReason?(): Promise<string | undefined>;
  /** Each call gives an origin of its own (its own table, queue, subject...), empty. */
  setUp(): Promise<Origin>;
}

/** The module shape of `harnesses/<connector>.ts`. */
export interface HarnessModule {
  sinkHarness?: SinkHarness;
  sourceHarness?: SourceHarness;
}
