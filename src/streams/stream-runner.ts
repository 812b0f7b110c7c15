/**
 * Runs one stream: its source hands over batches, the writer filters, transforms and writes
 * them to the sink, paced by the CU quota; only once the sink confirmed a batch (or it was
 * dead-lettered) is its position saved and the source told, so a crash anywhere leaves the
 * batch to be read again (at least once). The scaler looks at each interval and moves the
 * CU count between the stream's minimum and maximum, recording every change.
 *
 * Source batches that arrive while one is being written queue up and are written together,
 * as far as `batch.maxEvents` allows: a source of many small batches (an HTTP endpoint
 * with one event per request) still fills the sink's batches.
 */
import type { Dispatcher } from "undici";
import type { RelaybusPort, Sink, Source, SourceBatch } from "../../connectors/index.js";
import type { StreamDeadLetter, StreamStore } from "../log/stream-store.js";
import { unitsOfBytes } from "../log/usage-store.js";
import type { Clock, CloudEvent, Logger } from "../types.js";
import type { CompiledStream } from "./compile-stream.js";
import { abortableSleep } from "./abortable-sleep.js";
import { CuQuota, type CuRates } from "./cu-quota.js";
import { CuScaler } from "./cu-scaler.js";
import { createStreamWriter, eventBytes, StreamFailure, StreamStopped, type SizedEvent, type WriteOutcome } from "./stream-writer.js";

/** What a running stream is doing, for its status. */
export interface StreamRunStatus {
  /** `running`, or `failed` once it stopped on an error. */
  state: "running" | "failed";
  currentCU: number;
  /** The quota now: events and bytes per second. */
  quota: CuRates;
  /** Whether a batch is waiting for the quota right now. */
  throttled: boolean;
  /** Events handed over by the source and not yet confirmed. */
  eventsInFlight: number;
  /** Events waiting at the source, when it can tell (at the last scaler look). */
  backlog?: number;
  /** Events per second written in the last scaler interval. */
  eventsPerSecond: number;
  /** The last error the stream met (it may have recovered), and when. */
  lastError?: { message: string; atMs: number };
}

export interface StreamRunnerDeps {
  stream: CompiledStream;
  store: StreamStore;
  relaybus: RelaybusPort;
  perCU: CuRates;
  scaleIntervalMs: number;
  scaleDownAfterIntervals: number;
  transformTimeoutMs: number;
  /** HTTP requests of connectors go through it (the outbound policy). */
  httpDispatcher?: Dispatcher;
  clock: Clock;
  logger: Logger;
  /** Told when the stream fails (it stopped itself), with why. */
  onFailed?(reason: string): void;
}

export interface StreamRunner {
  status(): StreamRunStatus;
  /**
   * Sends dead letters again, in id order, through the same path and quota as the source's
   * events (a `transform` one through the transform again, a `sink` one straight to the sink).
   * Each is deleted once written or dead-lettered anew, in the commit of its batch.
   */
  redrive(letters: readonly StreamDeadLetter[]): Promise<{ redriven: number; deadLetteredAgain: number }>;
  /** Stops reading, abandons what is not confirmed (it is read again next time), closes source and sink. */
  stop(): Promise<void>;
}

interface Pending {
  batch: SourceBatch;
  sized: SizedEvent[];
  /** Dead letters sent again (not the source's): their ids, and whether they are shaped already. */
  redrive?: { ids: number[]; shaped: boolean; outcome?: WriteOutcome };
  resolve(): void;
  reject(error: Error): void;
}

/** Most source restarts in a row, without a batch between them, before the stream fails. */
const MAX_SOURCE_RESTARTS = 10;
/** Longest wait between source restarts. */
const MAX_SOURCE_BACKOFF_MS = 30_000;

/** Starts the stream at once (the runtime row must exist). */
export function startStreamRunner(deps: StreamRunnerDeps): StreamRunner {
  const { stream, store, clock, logger } = deps;
  const abort = new AbortController();
  const signal = abort.signal;
  const runtime = store.runtime(stream.name);
  const startCU = Math.min(stream.capacity.maxCU, Math.max(stream.capacity.minCU, runtime?.currentCU ?? stream.capacity.minCU));
  if (runtime !== undefined && runtime.currentCU !== startCU) {
    store.recordCuChange({
      stream: stream.name,
      atMs: clock.nowMs(),
      fromCU: runtime.currentCU,
      toCU: startCU,
      reason: `capacity bounds are now ${stream.capacity.minCU} to ${stream.capacity.maxCU} CU`,
    });
  }
  const quota = new CuQuota(deps.perCU, startCU, clock.nowMs());
  const scaler = new CuScaler({
    minCU: stream.capacity.minCU,
    maxCU: stream.capacity.maxCU,
    perCU: deps.perCU,
    scaleDownAfterIntervals: deps.scaleDownAfterIntervals,
  });
  const connectorContext = {
    logger,
    clock,
    signal,
    streamName: stream.name,
    relaybus: deps.relaybus,
    ...(deps.httpDispatcher === undefined ? {} : { httpDispatcher: deps.httpDispatcher }),
  };
  const sink: Sink = stream.sink.connector.create(stream.sink.config as never, connectorContext);
  let source: Source | undefined;

  let state: StreamRunStatus["state"] = "running";
  let lastError: StreamRunStatus["lastError"];
  const queue: Pending[] = [];
  let wake: (() => void) | undefined;
  let throttledSinceMs: number | undefined;
  let eventsInFlight = 0;
  // The scaler's window.
  let windowStartMs = clock.nowMs();
  let windowThrottledMs = 0;
  let windowEvents = 0;
  let windowBytes = 0;
  let lastRate = 0;
  let lastBacklog: number | undefined;

  const noteError = (message: string) => {
    lastError = { message, atMs: clock.nowMs() };
  };

  const writer = createStreamWriter({
    stream,
    sink,
    relaybus: deps.relaybus,
    transformTimeoutMs: deps.transformTimeoutMs,
    clock,
    logger,
    signal,
    onRetry: noteError,
  });

  const handle = (batch: SourceBatch): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted || state === "failed") return reject(new StreamStopped());
      // Sizes the source measured already (the log's, for a bus) are not measured again.
      const sizes = batch.sizesBytes?.length === batch.events.length ? batch.sizesBytes : undefined;
      const sized = batch.events.map((event, i) => ({ event, bytes: sizes?.[i] ?? eventBytes(event) }));
      eventsInFlight += sized.length;
      queue.push({ batch, sized, resolve, reject });
      wake?.();
    });

  const sleep = (ms: number) => abortableSleep(ms, signal);

  /** Waits for the quota to let `events` and `bytes` go; counts the time held back. */
  async function pace(events: number, bytes: number): Promise<void> {
    for (;;) {
      const waitMs = quota.take(events, bytes, clock.nowMs());
      if (waitMs === 0) return;
      throttledSinceMs = clock.nowMs();
      await sleep(waitMs);
      const held = clock.nowMs() - throttledSinceMs;
      throttledSinceMs = undefined;
      windowThrottledMs += held;
      throttledTotalMs += held;
      if (signal.aborted) throw new StreamStopped();
    }
  }
  let throttledTotalMs = 0;
  let throttledCommittedMs = 0;

  /** Takes queued batches, as many whole ones as fit in one sink batch (at least one). */
  function takeGroup(): Pending[] {
    const group = [queue.shift()!];
    // A redrive goes alone: it is not the source's, and it may skip the transform.
    if (group[0]!.redrive !== undefined) return group;
    let events = group[0]!.sized.length;
    while (queue.length > 0 && queue[0]!.redrive === undefined && events + queue[0]!.sized.length <= stream.batch.maxEvents) {
      const next = queue.shift()!;
      events += next.sized.length;
      group.push(next);
    }
    return group;
  }

  async function work(): Promise<void> {
    while (!signal.aborted && state === "running") {
      if (queue.length === 0) {
        // One listener per wait, removed after it: a long-lived stream waits millions of times.
        await new Promise<void>((resolve) => {
          const done = () => {
            signal.removeEventListener("abort", done);
            resolve();
          };
          wake = done;
          signal.addEventListener("abort", done, { once: true });
        });
        wake = undefined;
        continue;
      }
      const group = takeGroup();
      const sized = group.flatMap((p) => p.sized);
      const bytesIn = sized.reduce((sum, s) => sum + s.bytes, 0);
      let outcome: WriteOutcome;
      try {
        await pace(sized.length, bytesIn);
        outcome = await writer.write(sized, { shaped: group[0]!.redrive?.shaped === true });
      } catch (error) {
        for (const p of group) p.reject(error as Error);
        eventsInFlight -= sized.length;
        if (error instanceof StreamFailure) fail(error.message);
        continue;
      }
      const position = [...group].reverse().find((p) => p.batch.position !== undefined)?.batch.position;
      const meterEvents = stream.capacity.billing === "events";
      let meteredUnits = 0;
      if (meterEvents) {
        for (const s of sized) meteredUnits += unitsOfBytes(s.bytes);
        meteredUnits += outcome.retriedUnits;
      }
      const throttledMs = throttledTotalMs - throttledCommittedMs;
      const redrive = group[0]!.redrive;
      if (redrive !== undefined) redrive.outcome = outcome;
      try {
        store.commitProgress(stream.name, {
          ...(position === undefined ? {} : { position }),
          ...(redrive === undefined ? {} : { redriven: redrive.ids }),
          atMs: clock.nowMs(),
          // Redriven events came in once already; they are written (and metered) again.
          eventsIn: redrive === undefined ? sized.length : 0,
          meteredEvents: meterEvents ? sized.length + outcome.retriedEvents : 0,
          meteredUnits,
          eventsOut: outcome.eventsOut,
          bytesOut: outcome.bytesOut,
          eventsFiltered: outcome.eventsFiltered,
          retries: outcome.retries,
          throttledMs,
          deadLetters: outcome.deadLetters,
          deadLetteredElsewhere: outcome.deadLetteredToBus,
        });
        throttledCommittedMs += throttledMs;
      } catch (error) {
        // Not saved: the source must hand the batch over again, so it is not confirmed.
        for (const p of group) p.reject(error as Error);
        eventsInFlight -= sized.length;
        fail(`saving the position failed: ${(error as Error).message}`);
        continue;
      }
      eventsInFlight -= sized.length;
      windowEvents += sized.length;
      windowBytes += bytesIn;
      for (const p of group) p.resolve();
    }
    for (const p of queue.splice(0)) {
      eventsInFlight -= p.sized.length;
      p.reject(new StreamStopped());
    }
  }

  function fail(reason: string): void {
    if (state === "failed") return;
    state = "failed";
    noteError(reason);
    logger.error("stream failed", { stream: stream.name, reason });
    try {
      store.setState(stream.name, "failed", reason, clock.nowMs());
    } catch (error) {
      logger.error("could not record the stream's failure", { stream: stream.name, error: (error as Error).message });
    }
    deps.onFailed?.(reason);
    abort.abort();
  }

  /** Runs the source; restarts it with backoff when it fails, from the last saved position. */
  async function runSource(): Promise<void> {
    let failures = 0;
    while (!signal.aborted && state === "running") {
      const position = store.runtime(stream.name)?.position;
      let handedOver = false;
      source = stream.source.connector.create(stream.source.config as never, {
        ...connectorContext,
        position,
        maxBatchEvents: stream.batch.maxEvents,
        maxBatchWaitMs: stream.batch.maxWaitMs,
      });
      try {
        await source.run((batch) => {
          handedOver = true;
          return handle(batch);
        });
        if (!signal.aborted) throw new Error("the source stopped by itself");
      } catch (error) {
        if (signal.aborted) break;
        failures = handedOver ? 1 : failures + 1;
        const message = `source: ${(error as Error).message}`;
        if (failures >= MAX_SOURCE_RESTARTS) {
          fail(`${message} (${failures} failures in a row)`);
          break;
        }
        const backoffMs = Math.min(MAX_SOURCE_BACKOFF_MS, 500 * 2 ** (failures - 1));
        noteError(`${message}; restarting it in ${backoffMs} ms`);
        logger.warn("stream source failed; restarting it", { stream: stream.name, error: message, backoffMs });
      } finally {
        await source.close().catch(() => undefined);
      }
      await sleep(Math.min(MAX_SOURCE_BACKOFF_MS, 500 * 2 ** Math.max(0, failures - 1)));
    }
  }

  // The scaler and the CU-time meter, once per interval.
  let looking = false;
  const scaleTimer = setInterval(() => {
    if (looking || state !== "running") return;
    looking = true;
    void look().finally(() => {
      looking = false;
    });
  }, deps.scaleIntervalMs);

  async function look(): Promise<void> {
    const nowMs = clock.nowMs();
    const windowMs = nowMs - windowStartMs;
    const throttledNow = throttledSinceMs === undefined ? 0 : nowMs - throttledSinceMs;
    let backlog: number | undefined;
    try {
      const atSource = await source?.backlog?.();
      backlog = atSource === undefined ? undefined : atSource + eventsInFlight;
    } catch {
      backlog = undefined;
    }
    lastBacklog = backlog;
    const window = {
      windowMs,
      throttledMs: windowThrottledMs + throttledNow,
      events: windowEvents,
      bytes: windowBytes,
      backlog,
    };
    lastRate = windowMs > 0 ? (windowEvents * 1000) / windowMs : 0;
    windowStartMs = nowMs;
    windowThrottledMs = -throttledNow;
    windowEvents = 0;
    windowBytes = 0;
    try {
      if (stream.capacity.billing === "cu") store.addCapacityTime(stream.name, quota.cu, windowMs, nowMs);
      const decision = scaler.observe(quota.cu, window);
      if (decision !== undefined && decision.toCU !== quota.cu) {
        store.recordCuChange({ stream: stream.name, atMs: nowMs, fromCU: quota.cu, toCU: decision.toCU, reason: decision.reason });
        logger.info("stream capacity changed", { stream: stream.name, fromCU: quota.cu, toCU: decision.toCU, reason: decision.reason });
        quota.setCU(decision.toCU, nowMs);
      }
    } catch (error) {
      noteError(`capacity: ${(error as Error).message}`);
    }
  }

  const working = work().catch((error: unknown) => fail(`internal: ${(error as Error).message}`));
  const sourcing = runSource().catch((error: unknown) => fail(`internal: ${(error as Error).message}`));

  async function redrive(letters: readonly StreamDeadLetter[]): Promise<{ redriven: number; deadLetteredAgain: number }> {
    // Runs of one stage, in id order, each cut to sink batches' size.
    const runs: StreamDeadLetter[][] = [];
    for (const letter of letters) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last[0]!.stage === letter.stage && last.length < stream.batch.maxEvents) last.push(letter);
      else runs.push([letter]);
    }
    const entries = runs.map((run) => {
      const events = run.map((l) => l.event as unknown as CloudEvent);
      const redriveOf: Pending["redrive"] = { ids: run.map((l) => l.id), shaped: run[0]!.stage === "sink" };
      const done = new Promise<void>((resolve, reject) => {
        if (signal.aborted || state === "failed") return reject(new StreamStopped());
        const sized = events.map((event) => ({ event, bytes: eventBytes(event) }));
        eventsInFlight += sized.length;
        queue.push({ batch: { events }, sized, redrive: redriveOf, resolve, reject });
        wake?.();
      });
      return { done, redriveOf };
    });
    await Promise.all(entries.map((e) => e.done));
    const again = entries.reduce((sum, e) => sum + (e.redriveOf?.outcome?.deadLetters.length ?? 0) + (e.redriveOf?.outcome?.deadLetteredToBus ?? 0), 0);
    return { redriven: letters.length, deadLetteredAgain: again };
  }

  let stopping: Promise<void> | undefined;
  return {
    redrive,
    status: () => ({
      state,
      currentCU: quota.cu,
      quota: { eventsPerSecond: quota.eventsPerSecond, bytesPerSecond: quota.bytesPerSecond },
      throttled: throttledSinceMs !== undefined,
      eventsInFlight,
      ...(lastBacklog === undefined ? {} : { backlog: lastBacklog }),
      eventsPerSecond: Math.round(lastRate),
      ...(lastError === undefined ? {} : { lastError }),
    }),
    stop() {
      stopping ??= (async () => {
        clearInterval(scaleTimer);
        // Bill the capacity of the last, partial interval.
        const nowMs = clock.nowMs();
        if (state === "running" && stream.capacity.billing === "cu") {
          try {
            store.addCapacityTime(stream.name, quota.cu, nowMs - windowStartMs, nowMs);
          } catch (error) {
            logger.warn("could not meter the stream's last capacity", { stream: stream.name, error: (error as Error).message });
          }
        }
        abort.abort();
        await Promise.all([working, sourcing]);
        await sink.close().catch(() => undefined);
      })();
      return stopping;
    },
  };
}
