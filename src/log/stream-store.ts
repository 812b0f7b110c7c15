/**
 * Event streams' state: the definitions created through the API, and for every stream (from
 * a file or the API) its runtime: what it should be doing (running or paused), what it is
 * doing (running, paused, failed and why), the source position the sink last confirmed, its
 * counters, its capacity (CU) history and its dead letters. A stream's position, counters,
 * usage and dead letters of one confirmed batch commit in ONE transaction, so a crash loses
 * all of them or none: the source hands over again from the last saved position (at least
 * once), and nothing is counted twice.
 */
import type { JsonObject } from "../types.js";

/** What a stream should be doing: its operator's choice. */
export const STREAM_DESIRED_STATES = ["running", "paused"] as const;
export type StreamDesiredState = (typeof STREAM_DESIRED_STATES)[number];

/** What a stream is doing. `failed`: it stopped on an error it cannot get past by itself. */
export const STREAM_STATES = ["running", "paused", "failed"] as const;
export type StreamState = (typeof STREAM_STATES)[number];

/** A stream definition created through the API (file streams live in their files). */
export interface StoredStreamDefinition {
  name: string;
  /** The definition as given (validated), JSON. */
  definition: JsonObject;
  createdAtMs: number;
  updatedAtMs: number;
}

/** A stream's counters since it was created. */
export interface StreamCounters {
  /** Events the source handed over (retries not included). */
  eventsIn: number;
  /** Events the sink confirmed. */
  eventsOut: number;
  /** Events the filter dropped (or the transform turned into nothing). */
  eventsFiltered: number;
  /** Events dead-lettered (kept with the stream, or published to its dead-letter bus). */
  eventsDeadLettered: number;
  /** Bytes of the events the sink confirmed (their structured JSON form). */
  bytesOut: number;
  /** Sink writes that failed and were tried again. */
  retries: number;
  /** Time spent waiting for the CU quota, ms. */
  throttledMs: number;
}

/** A stream's runtime as stored. A stream never run has none. */
export interface StreamRuntime extends StreamCounters {
  name: string;
  desired: StreamDesiredState;
  state: StreamState;
  /** Why the stream is failed (or the last error it recovered from). */
  reason?: string;
  /** The source position after the last batch the sink confirmed. */
  position?: string;
  /** The capacity now, in CUs. */
  currentCU: number;
  /** When an event last came in, ms since the epoch. */
  lastEventAtMs?: number;
  updatedAtMs: number;
}

/**
 * Where an event stopped: `transform` (its transform failed; the event is kept as read) or
 * `sink` (the sink refused it or it ran out of retries; kept as written, transformed).
 * A redrive sends a `transform` one through the transform again, a `sink` one straight to the sink.
 */
export type StreamDeadLetterStage = "sink" | "transform";

/** One event that could not be written, kept with why. */
export interface StreamDeadLetterInput {
  event: JsonObject;
  reason: string;
  /** Write attempts made for it. */
  attempts: number;
  stage: StreamDeadLetterStage;
}

export interface StreamDeadLetter extends StreamDeadLetterInput {
  id: number;
  stream: string;
  eventId: string;
  failedAtMs: number;
}

/** What one confirmed source batch did, committed with its position. */
export interface StreamProgress {
  /** The source position to resume after (absent for broker-acknowledged sources). */
  position?: string;
  /** When the batch was confirmed. */
  atMs: number;
  eventsIn: number;
  /**
   * What the `stream-events` meter counts for this batch: the events read, retries
   * included, and their 64 KB units. Zero for a stream billed by the CU-hour.
   */
  meteredEvents: number;
  meteredUnits: number;
  eventsOut: number;
  bytesOut: number;
  eventsFiltered: number;
  retries: number;
  throttledMs: number;
  /** Dead letters to keep with the stream. */
  deadLetters: readonly StreamDeadLetterInput[];
  /** Events dead-lettered elsewhere (the stream's dead-letter bus): counted, not kept. */
  deadLetteredElsewhere: number;
  /** Dead letters this batch redrove (sent again): deleted with the commit. */
  redriven?: readonly number[];
}

/** A change of a stream's capacity. */
export interface CuChange {
  stream: string;
  atMs: number;
  fromCU: number;
  toCU: number;
  /** Why, as a sentence ("backlog 12,000 events, throttled 92% of the last 10 s"). */
  reason: string;
}

/** Streams' definitions and runtime, in the state file. */
export interface StreamStore {
  listDefinitions(): StoredStreamDefinition[];
  getDefinition(name: string): StoredStreamDefinition | undefined;
  /** Creates or replaces an API stream's definition. */
  putDefinition(definition: StoredStreamDefinition): void;
  /**
   * Deletes a stream's definition (if from the API), runtime and dead letters. Its capacity
   * history and usage stay (they are billed). Returns whether anything was deleted.
   */
  deleteStream(name: string): boolean;
  runtime(name: string): StreamRuntime | undefined;
  listRuntimes(): StreamRuntime[];
  /** Creates the runtime row of a stream that has none (state as `desired`, at `minCU`). */
  ensureRuntime(name: string, desired: StreamDesiredState, minCU: number, nowMs: number): StreamRuntime;
  /** Sets what the stream should be doing (pause, resume). */
  setDesired(name: string, desired: StreamDesiredState, nowMs: number): void;
  /** Records what the stream is doing, and why when failed. */
  setState(name: string, state: StreamState, reason: string | undefined, nowMs: number): void;
  /**
   * Commits one confirmed batch: position, counters, the `stream-events` usage (quantity
   * events in, units) and the dead letters, in one transaction.
   */
  commitProgress(name: string, progress: StreamProgress): void;
  /**
   * Adds `ms` of capacity at `cu` CUs to the stream's CU time and the `stream-cu-hours` meter
   * (which counts CU-milli-hours), carrying the remainder so that the usage never drifts from
   * the exact CU time. The usage lands in the hour of `atMs`.
   */
  addCapacityTime(name: string, cu: number, ms: number, atMs: number): void;
  /** Records a capacity change and makes `toCU` the current CU, in one transaction. */
  recordCuChange(change: CuChange): void;
  /**
   * The `stream-idle` meter: for every stream, counts each whole UTC day before `beforeDayMs`
   * that starts at least `idleAfterMs` after its last inflow (or its creation, when nothing
   * ever came in), and that was not counted before. One transaction; rerunning it counts
   * nothing twice. Returns the days counted.
   */
  meterIdleDays(beforeDayMs: number, idleAfterMs: number): number;
  /** The capacity changes of a stream, newest first. */
  cuChanges(name: string, limit: number): CuChange[];
  /** Dead letters of a stream, oldest first, after `afterId`. */
  listDeadLetters(name: string, afterId: number, limit: number): StreamDeadLetter[];
  /** The dead letters of a stream with these ids (those that exist), oldest first. */
  getDeadLetters(name: string, ids: readonly number[]): StreamDeadLetter[];
  /** Deletes a stream's dead letters (these ids, or all); returns how many. */
  purgeDeadLetters(name: string, ids: readonly number[] | "all"): number;
}
