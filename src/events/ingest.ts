/**
 * Ingest: a request body in, durable events out (DESIGN section 2, step 1). Each request is
 * parsed once, every entry is mapped, validated, serialized and sized once (`measureEvent`),
 * and all valid entries of the request go to the log in ONE `append`. The result is returned
 * only after that append resolves: the ack point. If the append fails the request fails
 * whole; an ack never covers part of a request.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { RelaybusConfig } from "../config/defaults.js";
import { type ErrorCode, RelaybusError, isRelaybusError } from "../errors.js";
import type { LogEngine } from "../log/log-engine.js";
import { type Clock, type EventToAppend, systemClock } from "../types.js";
import { parseCloudEventsRequest } from "./http-binding.js";
import { parseJsonBody } from "./json-body.js";
import { parsePutEventsEntry, parsePutEventsRequest } from "./put-events.js";
import { measureEvent } from "./sizing.js";

/**
 * One entry of a PutEvents answer, in AWS's shape: the new event's id, or why it failed.
 * `Units`, the event's billable 64 KB units, only when asked for ({@link IngestOptions}).
 */
export type PutEventsResultEntry =
  | { EventId: string; Units?: number }
  | { ErrorCode: ErrorCode; ErrorMessage: string };

/**
 * The PutEvents answer, in AWS's shape so AWS SDKs read it: one entry per request entry, in
 * request order, and how many failed. Failed entries were not stored; the others were.
 */
export interface PutEventsResult {
  FailedEntryCount: number;
  Entries: PutEventsResultEntry[];
}

/** One event of a CloudEvents batch answer: its id (and units, when asked for) once stored, or why it was rejected. */
export type CloudEventsBatchEntryResult =
  | { id: string; units?: number }
  | { error: { code: ErrorCode; message: string } };

/** The answer to a batched-mode request: one result per event, in request order. */
export interface CloudEventsBatchResult {
  results: CloudEventsBatchEntryResult[];
  /** How many events of the batch were rejected (and not stored). */
  failedCount: number;
}

/**
 * The answer to a CloudEvents request: `{ id }` for binary and structured mode (one event,
 * stored; any problem throws instead), {@link CloudEventsBatchResult} for batched mode.
 */
export type CloudEventsIngestResult = { id: string; units?: number } | CloudEventsBatchResult;

/**
 * One event's turn under the publish rate limits: called once for each event about to be
 * stored, after every other check passed. Takes the event's share of the limits and returns
 * undefined, or takes nothing and returns a {@link PublishRefusal}. The HTTP layer builds it
 * from the bus and key limits; with none set it passes none, and ingest does no work for it.
 */
export type PublishAdmission = (bus: string) => PublishRefusal | undefined;

/** Why an event was not admitted, and when one would be. */
export interface PublishRefusal {
  /** Milliseconds until an event would be admitted; at least 1. */
  waitMs: number;
  /** The limit passed, for the message: `10 events/s on bus "orders" (limits.publishRatePerBus)`. */
  limit: string;
}

/** Per-request options of ingest. */
export interface IngestOptions {
  /**
   * The publish rate limits of this request (per bus, per API key). Absent: none apply.
   * A refused event is answered `RateLimited` in its place; a request all of whose events
   * are refused so (a single CloudEvent, say) throws `RateLimited` with
   * `details.retryAfterSeconds`, and nothing is stored.
   */
  admit?: PublishAdmission;
  /**
   * Answer each stored event's billable 64 KB units too (`Units` in PutEvents entries,
   * `units` in CloudEvents results): the producer sees what it spends. Default false, so
   * that existing clients see the answers they know.
   */
  includeUnits?: boolean;
}

/** What ingest needs. */
export interface IngestDeps {
  log: LogEngine;
  /** Whether a bus exists; called per entry, so it should be a map lookup. */
  busExists(name: string): boolean;
  limits: RelaybusConfig["limits"];
  /** Source of `time` for PutEvents entries without `Time`. Default: the wall clock. */
  clock?: Clock;
}

/** The ingest entry points the HTTP data plane calls with raw headers and body. */
export interface Ingest {
  /**
   * Ingests an AWS `PutEvents` request body (`{"Entries": [...]}`).
   *
   * @returns per-entry results once every valid entry is committed. Entry errors:
   *   `ValidationError`, `MalformedDetail`, `JsonTooDeep`, `EventTooLarge`, `BusNotFound`,
   *   `RateLimited`; `RateLimited` for the request when every entry is.
   * @throws RelaybusError for the request as a whole: `PayloadTooLarge`, `InvalidJson`,
   *   `JsonTooDeep`, `ValidationError` (no `Entries` array), `TooManyEntries`; and whatever
   *   the log's append rejects with (`ServiceUnavailable`), in which case nothing was stored.
   */
  putEvents(body: Buffer, options?: IngestOptions): Promise<PutEventsResult>;
  /**
   * Ingests a CloudEvents HTTP request (binary, structured or batched mode) into `bus`.
   *
   * @returns `{ id }` for one event; `{ results, failedCount }` for a batch, once every valid
   *   event is committed.
   * @throws RelaybusError `BusNotFound`, `PayloadTooLarge`, `UnsupportedMediaType`,
   *   `InvalidJson`, `JsonTooDeep`, `JsonTooManyKeys`, `TooManyEntries`; for one event also
   *   `ValidationError`, `EventTooLarge` and `RateLimited` (as for a batch all of whose events
   *   are); and the log's append rejection, in which case nothing was stored.
   */
  putCloudEvents(
    bus: string,
    headers: IncomingHttpHeaders,
    body: Buffer,
    options?: IngestOptions,
  ): Promise<CloudEventsIngestResult>;
}

/** Creates the ingest entry points over a log. Ingest holds no resources of its own. */
export function createIngest(deps: IngestDeps): Ingest {
  const { log, busExists, limits } = deps;
  const clock = deps.clock ?? systemClock;

  const assertBodySize = (body: Buffer): void => {
    // The HTTP layer stops reading past the limit; this guards other callers (CLI, tests).
    if (body.length > limits.maxRequestBytes) {
      throw new RelaybusError(
        "PayloadTooLarge",
        `request body: ${body.length} bytes, over the limit of ${limits.maxRequestBytes}`,
        { details: { sizeBytes: body.length, maxRequestBytes: limits.maxRequestBytes } },
      );
    }
  };

  /** Measures once and enforces `maxEventBytes` on exactly what the log will store. */
  const measureWithinLimit = (
    bus: string,
    event: EventToAppend["event"],
    label: string,
    dataJson?: string,
  ): EventToAppend => {
    const measured = measureEvent(bus, event, dataJson);
    if (measured.sizeBytes > limits.maxEventBytes) {
      throw new RelaybusError(
        "EventTooLarge",
        `${label}: the event is ${measured.sizeBytes} bytes as JSON, over the limit of ${limits.maxEventBytes}`,
        { details: { field: label, sizeBytes: measured.sizeBytes, maxEventBytes: limits.maxEventBytes } },
      );
    }
    return measured;
  };

  const putEvents = async (body: Buffer, options: IngestOptions = {}): Promise<PutEventsResult> => {
    assertBodySize(body);
    const entries = parsePutEventsRequest(parseJsonBody(body, limits), limits);
    const context = {
      nowIso: new Date(clock.nowMs()).toISOString(),
      maxJsonDepth: limits.maxJsonDepth,
      maxJsonKeysPerObject: limits.maxJsonKeysPerObject,
    };
    const results: PutEventsResultEntry[] = new Array(entries.length);
    const toAppend: EventToAppend[] = [];
    const throttle = options.admit === undefined ? undefined : new Throttle(options.admit);
    let failed = 0;
    for (let i = 0; i < entries.length; i++) {
      try {
        const { bus, event, dataJson } = parsePutEventsEntry(entries[i], i, context);
        if (!busExists(bus)) {
          throw new RelaybusError("BusNotFound", `Entries[${i}].EventBusName: bus ${JSON.stringify(bus)} does not exist`, {
            details: { field: `Entries[${i}].EventBusName`, bus },
          });
        }
        const measured = measureWithinLimit(bus, event, `Entries[${i}]`, dataJson);
        throttle?.admit(bus, `Entries[${i}]`);
        toAppend.push(measured);
        results[i] = options.includeUnits === true ? { EventId: event.id, Units: measured.units } : { EventId: event.id };
      } catch (error) {
        if (!isRelaybusError(error)) throw error;
        results[i] = { ErrorCode: error.code, ErrorMessage: error.message };
        failed++;
      }
    }
    throttle?.assertNotAllRefused(failed, entries.length);
    if (toAppend.length > 0) await log.append(toAppend);
    return { FailedEntryCount: failed, Entries: results };
  };

  const putCloudEvents = async (
    bus: string,
    headers: IncomingHttpHeaders,
    body: Buffer,
    options: IngestOptions = {},
  ): Promise<CloudEventsIngestResult> => {
    if (!busExists(bus)) {
      throw new RelaybusError("BusNotFound", `bus ${JSON.stringify(bus)} does not exist`, { details: { bus } });
    }
    assertBodySize(body);
    const parsed = parseCloudEventsRequest(headers, body, limits);
    const throttle = options.admit === undefined ? undefined : new Throttle(options.admit);
    if (parsed.mode !== "batch") {
      const measured = measureWithinLimit(bus, parsed.event, "event");
      throttle?.admit(bus, "event");
      await log.append([measured]);
      return options.includeUnits === true ? { id: parsed.event.id, units: measured.units } : { id: parsed.event.id };
    }
    const results: CloudEventsBatchEntryResult[] = new Array(parsed.items.length);
    const toAppend: EventToAppend[] = [];
    let failed = 0;
    for (let i = 0; i < parsed.items.length; i++) {
      const item = parsed.items[i]!;
      try {
        if ("error" in item) throw item.error;
        const measured = measureWithinLimit(bus, item.event, `events[${i}]`);
        throttle?.admit(bus, `events[${i}]`);
        toAppend.push(measured);
        results[i] = options.includeUnits === true ? { id: item.event.id, units: measured.units } : { id: item.event.id };
      } catch (error) {
        if (!isRelaybusError(error)) throw error;
        results[i] = { error: { code: error.code, message: error.message } };
        failed++;
      }
    }
    throttle?.assertNotAllRefused(failed, parsed.items.length);
    if (toAppend.length > 0) await log.append(toAppend);
    return { results, failedCount: failed };
  };

  return { putEvents, putCloudEvents };
}

/**
 * The rate limits over one request: admits its events one by one, and remembers the refusals
 * so that a request refused whole answers 429 rather than a list of refusals.
 */
class Throttle {
  readonly #admission: PublishAdmission;
  #refused = 0;
  #shortestWaitMs = Number.POSITIVE_INFINITY;

  constructor(admission: PublishAdmission) {
    this.#admission = admission;
  }

  /** Takes the event's share, or throws `RateLimited` for it (`label` names the entry). */
  admit(bus: string, label: string): void {
    const refusal = this.#admission(bus);
    if (refusal === undefined) return;
    this.#refused++;
    this.#shortestWaitMs = Math.min(this.#shortestWaitMs, refusal.waitMs);
    const retryAfterSeconds = retryAfterSecondsOf(refusal.waitMs);
    throw new RelaybusError(
      "RateLimited",
      `${label}: over the publish rate of ${refusal.limit}; retry after ${retryAfterSeconds} s`,
      { details: { bus, retryAfterSeconds } },
    );
  }

  /**
   * Throws `RateLimited` for the request when all `total` events failed and every failure
   * was a rate limit's: nothing is stored, and `details.retryAfterSeconds` is the soonest
   * any of them would pass.
   */
  assertNotAllRefused(failed: number, total: number): void {
    if (this.#refused === 0 || this.#refused !== failed || failed !== total) return;
    const retryAfterSeconds = retryAfterSecondsOf(this.#shortestWaitMs);
    throw new RelaybusError(
      "RateLimited",
      `every event was over a publish rate limit; retry after ${retryAfterSeconds} s`,
      { details: { retryAfterSeconds } },
    );
  }
}

/** A wait as HTTP's `Retry-After`: whole seconds, rounded up, at least 1. */
function retryAfterSecondsOf(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}
