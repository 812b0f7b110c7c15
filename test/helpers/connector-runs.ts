/**
 * What the connector tests (test/integration/connector-*.test.ts and the shared conformance
 * tests) build the same way: numbered CloudEvents, the context a sink or source is given, and
 * one run of a source that records what it hands over.
 */
import assert from "node:assert/strict";
import type {
  ConnectorContext,
  RelaybusPort,
  Source,
  SourceBatch,
  SourceContext,
  SourceDefinition,
} from "../../connectors/index.js";
import {
  silentLogger,
  systemClock,
  type Clock,
  type CloudEvent,
  type JsonValue,
  type Logger,
} from "../../src/types.js";
import { noBusesPort } from "../conformance/load-harnesses.js";

/** How long `SourceRun.waitFor` waits by default (ms). */
export const DEFAULT_WAIT_MS = 10_000;

/** The attributes of the events `testEvents` makes, besides their ids. */
export interface TestEventShape {
  /** Default "test". */
  source?: string;
  /** Default "connector.test". */
  type?: string;
  /** Left out by default. */
  time?: string;
  /** The data of the `i`th event; default `{ i }`. */
  data?: (i: number) => JsonValue;
}

/** `count` CloudEvents with ids `<tag>-0`, `<tag>-1`, ..., alike but for their data. */
export function testEvents(count: number, tag: string, shape: TestEventShape = {}): CloudEvent[] {
  const { source = "test", type = "connector.test", time, data = (i) => ({ i }) } = shape;
  return Array.from({ length: count }, (_, i) => ({
    specversion: "1.0",
    id: `${tag}-${i}`,
    source,
    type,
    ...(time === undefined ? {} : { time }),
    data: data(i),
  }));
}

/** What a test may set of a connector's context; the rest is a test's usual. */
export interface ContextOptions {
  /** Default "test"; sources derive consumer names and ids from it. */
  streamName?: string;
  /** Default the wall clock. */
  clock?: Clock;
  /** Default silent. */
  logger?: Logger;
  /** Default a port that refuses every call (no Relaybus buses). */
  relaybus?: RelaybusPort;
  /** Default a signal that never aborts. */
  signal?: AbortSignal;
}

/** A sink's context. */
export function sinkContext(options: ContextOptions = {}): ConnectorContext {
  return {
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? systemClock,
    signal: options.signal ?? new AbortController().signal,
    streamName: options.streamName ?? "test",
    relaybus: options.relaybus ?? noBusesPort,
  };
}

/** What a test may set of a source's context besides the common part. */
export interface SourceContextOptions extends ContextOptions {
  /** The saved position; default none (a first run). */
  position?: string | undefined;
  /** Default 100. */
  maxBatchEvents?: number;
  /** Default 50 ms. */
  maxBatchWaitMs?: number;
}

/** A source's context. */
export function sourceContext(options: SourceContextOptions = {}): SourceContext {
  return {
    ...sinkContext(options),
    position: options.position,
    maxBatchEvents: options.maxBatchEvents ?? 100,
    maxBatchWaitMs: options.maxBatchWaitMs ?? 50,
  };
}

/** How a source run is started, and what the stream does with each batch. */
export interface SourceRunOptions extends Omit<SourceContextOptions, "signal"> {
  /**
   * Whether a batch is confirmed (default: all are). An unconfirmed batch's `handle` stays
   * pending until the run stops, then rejects, as a stopping stream's does.
   */
  confirm?: (batch: SourceBatch) => boolean;
  /**
   * What the stream does with a confirmed batch once it is recorded: resolving confirms it,
   * rejecting refuses it (default: confirmed at once).
   */
  handle?: (batch: SourceBatch) => Promise<void>;
  /** How long `waitFor` waits unless told (ms); default DEFAULT_WAIT_MS. */
  waitMs?: number;
  /**
   * Whether the test expects `run` to reject: then `stop` resolves with the error. Otherwise
   * (the default) `stop` rejects with it, so that a run that failed fails the test.
   */
  runMayFail?: boolean;
}

/** One run of a source: what it handed over, and how to stop it. */
export interface SourceRun {
  source: Source;
  /** Every event handed over, in order. */
  received: CloudEvent[];
  batches: SourceBatch[];
  /** The position of the last confirmed batch that had one (the stream would save it). */
  position(): string | undefined;
  /** The run itself (a test that expects it to reject may await it). */
  running: Promise<void>;
  /** How `run` settled, once it did: undefined, or the error. */
  settled: Promise<unknown>;
  /** Resolves once `count` events arrived; fails after `timeoutMs` saying how many did. */
  waitFor(count: number, timeoutMs?: number): Promise<void>;
  /**
   * Aborts the run, waits for `run` to settle and closes the source; idempotent. Resolves with
   * how `run` settled (undefined, or with `runMayFail` its error); without `runMayFail`, rejects
   * with the error of a run that failed.
   */
  stop(): Promise<unknown>;
}

/** Creates the source with a context of its own and runs it until `stop`. */
export function runSource<Config>(
  definition: SourceDefinition<Config>,
  config: Config,
  options: SourceRunOptions = {},
): SourceRun {
  const abort = new AbortController();
  const source = definition.create(config, sourceContext({ ...options, signal: abort.signal }));
  const received: CloudEvent[] = [];
  const batches: SourceBatch[] = [];
  let position = options.position;
  const waiters = new Set<() => void>();
  const stopped = new Promise<void>((resolve) =>
    abort.signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  const running = source.run(async (batch) => {
    batches.push(batch);
    received.push(...batch.events);
    for (const wake of waiters) wake();
    if (options.confirm?.(batch) === false) {
      await stopped;
      throw new Error("the stream stopped before the sink confirmed this batch");
    }
    await options.handle?.(batch);
    if (batch.position !== undefined) position = batch.position;
  });
  const outcome = running.then(
    () => ({ failed: false, error: undefined as unknown }),
    (error: unknown) => ({ failed: true, error }),
  );
  let stopping: Promise<unknown> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      abort.abort();
      const { failed, error } = await outcome;
      await source.close();
      if (failed && options.runMayFail !== true) throw error;
      return error;
    })());
  return {
    source,
    received,
    batches,
    position: () => position,
    running,
    settled: outcome.then(({ error }) => error),
    stop,
    async waitFor(count, timeoutMs = options.waitMs ?? DEFAULT_WAIT_MS) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        const left = deadline - Date.now();
        if (left <= 0)
          assert.fail(`expected ${count} events, got ${received.length} after ${timeoutMs} ms`);
        // Woken by the next batch, or after a while to look at the deadline again.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(left, 200));
          function done() {
            clearTimeout(timer);
            waiters.delete(done);
            resolve();
          }
          waiters.add(done);
        });
      }
    },
  };
}
