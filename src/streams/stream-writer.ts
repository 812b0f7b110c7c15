/**
 * What a stream does with the events of its source batches: filter, transform, cut into sink
 * batches by `batch.maxEvents` and `batch.maxBytes`, and write each batch with the stream's
 * retry policy. A batch the sink refuses for good is written again one event at a time, so
 * that only the events it really refuses are dead-lettered; a batch that runs out of
 * retries is dead-lettered whole. With `deadLetter: none` running out is the stream's
 * failure instead ({@link StreamFailure}): nothing is skipped.
 */
import { SinkError, type RelaybusPort, type Sink } from "../../connectors/index.js";
import { isRelaybusError } from "../errors.js";
import type { RetryPolicy } from "../log/log-engine.js";
import type { StreamDeadLetterInput, StreamDeadLetterStage } from "../log/stream-store.js";
import { unitsOfBytes } from "../log/usage-store.js";
import { retryDelayMs, type RandomSource } from "../delivery/retry-policy.js";
import type { Clock, CloudEvent, JsonObject, Logger } from "../types.js";
import { abortableSleep } from "./abortable-sleep.js";
import type { CompiledStream } from "./compile-stream.js";

/** The stream cannot go past a batch: it fails, and its source keeps the batch. */
export class StreamFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StreamFailure";
  }
}

/** The stream is stopping: the batch was not finished, and its source keeps it. */
export class StreamStopped extends Error {
  constructor() {
    super("the stream stopped");
    this.name = "StreamStopped";
  }
}

/** An event on its way to the sink, with its size. */
export interface SizedEvent {
  event: CloudEvent;
  bytes: number;
}

/** What writing a group of events did. */
export interface WriteOutcome {
  eventsOut: number;
  bytesOut: number;
  eventsFiltered: number;
  /** Sink writes tried again. */
  retries: number;
  /** Events written again by those retries (the meter counts them). */
  retriedEvents: number;
  /** Their 64 KB units, each event's own (`ceil(bytes / 65536)`), for the meter. */
  retriedUnits: number;
  /** Dead letters kept with the stream. */
  deadLetters: StreamDeadLetterInput[];
  /** Events dead-lettered to the stream's dead-letter bus. */
  deadLetteredToBus: number;
}

export interface StreamWriterDeps {
  stream: CompiledStream;
  sink: Sink;
  relaybus: RelaybusPort;
  transformTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
  random?: RandomSource;
  /** Told about each failed write that will be tried again, for the stream's status. */
  onRetry?(message: string): void;
}

/** The size of an event as metered: its structured JSON form, in UTF-8 bytes. */
export function eventBytes(event: CloudEvent): number {
  return Buffer.byteLength(JSON.stringify(event), "utf8");
}

export function createStreamWriter(deps: StreamWriterDeps) {
  const { stream, sink, clock, signal } = deps;
  const random = deps.random ?? Math.random;

  /** Filter and transform; returns the events to write and how many were dropped. */
  async function shape(events: readonly SizedEvent[], outcome: WriteOutcome): Promise<SizedEvent[]> {
    const kept: SizedEvent[] = [];
    const failed: { sized: SizedEvent; reason: string }[] = [];
    for (const sized of events) {
      if (stream.filter !== undefined && !stream.filter.matches(sized.event)) {
        outcome.eventsFiltered++;
        continue;
      }
      if (stream.transform === undefined) {
        kept.push(sized);
        continue;
      }
      let data;
      try {
        data = await stream.transform.evaluate(sized.event, deps.transformTimeoutMs);
      } catch (error) {
        // A timeout's reason ends in its code, as a rule target's dead letter does.
        const code = isRelaybusError(error, "TransformTimeout") ? " (TransformTimeout)" : "";
        failed.push({ sized, reason: `transform: ${(error as Error).message}${code}` });
        continue;
      }
      if (data === undefined) {
        outcome.eventsFiltered++;
        continue;
      }
      const event: CloudEvent = { ...sized.event, data };
      if (event.data_base64 !== undefined) delete event.data_base64;
      kept.push({ event, bytes: eventBytes(event) });
    }
    // The stream's dead-letter policy decides, as for the sink's refusals.
    for (const { sized, reason } of failed) await deadLetter([sized], reason, 0, outcome, "transform");
    return kept;
  }

  /** Cuts events into sink batches of at most maxEvents and maxBytes (a larger event goes alone). */
  function cut(events: readonly SizedEvent[]): SizedEvent[][] {
    const batches: SizedEvent[][] = [];
    let current: SizedEvent[] = [];
    let bytes = 0;
    for (const sized of events) {
      if (current.length > 0 && (current.length >= stream.batch.maxEvents || bytes + sized.bytes > stream.batch.maxBytes)) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push(sized);
      bytes += sized.bytes;
    }
    if (current.length > 0) batches.push(current);
    return batches;
  }

  /** Writes one batch with retries; what cannot be written goes to the dead letters. */
  async function writeBatch(batch: SizedEvent[], outcome: WriteOutcome): Promise<void> {
    const policy: RetryPolicy = stream.retry;
    const startedMs = clock.nowMs();
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new StreamStopped();
      let failure: SinkError;
      try {
        await sink.write(batch.map((s) => s.event));
        outcome.eventsOut += batch.length;
        for (const s of batch) outcome.bytesOut += s.bytes;
        return;
      } catch (error) {
        if (signal.aborted) throw new StreamStopped();
        // Anything but a SinkError is a sink's bug or an unexpected failure: a retry may help.
        failure = error instanceof SinkError ? error : new SinkError((error as Error).message, { retryable: true, cause: error });
      }
      if (!failure.retryable) {
        if (batch.length > 1) {
          // Find the events the sink really refuses: the others still go, in order.
          for (const one of batch) await writeBatch([one], outcome);
          return;
        }
        await deadLetter(batch, `the sink refused it: ${failure.message}`, attempt, outcome);
        return;
      }
      const delayMs = retryDelayMs(policy, attempt, random);
      const ageLimitMs = startedMs + policy.maxAgeSeconds * 1000;
      if (attempt >= policy.maxAttempts || clock.nowMs() + delayMs > ageLimitMs) {
        const why = attempt >= policy.maxAttempts ? `${attempt} attempts` : `${policy.maxAgeSeconds} s of retries`;
        await deadLetter(batch, `ran out of ${why}: ${failure.message}`, attempt, outcome);
        return;
      }
      outcome.retries++;
      outcome.retriedEvents += batch.length;
      for (const s of batch) outcome.retriedUnits += unitsOfBytes(s.bytes);
      deps.onRetry?.(`sink write failed (attempt ${attempt}), retrying in ${delayMs} ms: ${failure.message}`);
      await abortableSleep(delayMs, signal);
    }
  }

  async function deadLetter(
    batch: SizedEvent[],
    reason: string,
    attempts: number,
    outcome: WriteOutcome,
    stage: StreamDeadLetterStage = "sink",
  ): Promise<void> {
    const policy = stream.deadLetter;
    if (policy === "none") {
      throw new StreamFailure(`${batch.length} event(s) could not be written (deadLetter: none): ${reason}`);
    }
    if (typeof policy === "object") {
      try {
        await deps.relaybus.publish(policy.bus, batch.map((s) => ({ ...s.event, deadletterreason: reason.slice(0, 1024) })));
        outcome.deadLetteredToBus += batch.length;
        return;
      } catch (error) {
        deps.logger.warn("stream dead-letter bus refused; keeping the events with the stream", {
          stream: stream.name,
          bus: policy.bus,
          error: (error as Error).message,
        });
      }
    }
    for (const s of batch) outcome.deadLetters.push({ event: s.event as JsonObject, reason, attempts, stage });
  }

  return {
    /**
     * Filters, transforms (unless `shaped`) and writes a group of events, in order. Resolves with what
     * happened once every event is written or dead-lettered; rejects with
     * {@link StreamStopped} or {@link StreamFailure} when the group must be read again.
     */
    async write(events: readonly SizedEvent[], options: { shaped?: boolean } = {}): Promise<WriteOutcome> {
      const outcome: WriteOutcome = {
        eventsOut: 0,
        bytesOut: 0,
        eventsFiltered: 0,
        retries: 0,
        retriedEvents: 0,
        retriedUnits: 0,
        deadLetters: [],
        deadLetteredToBus: 0,
      };
      // Shaped events (dead letters of the sink, redriven) were filtered and transformed already.
      const kept = options.shaped === true ? [...events] : await shape(events, outcome);
      for (const batch of cut(kept)) await writeBatch(batch, outcome);
      return outcome;
    },
  };
}

export type StreamWriter = ReturnType<typeof createStreamWriter>;
