/**
 * `GET /v1/events/{id}/trace?bus=B`: the life of one event, from the log and the delivery
 * state: when it was received (and its size and units), the rules that matched it, each
 * target's payload as sent, every attempt, and where it ended.
 *
 * Without `bus`, every bus is searched (an indexed lookup per bus, in the log and in the
 * delivery state); an id found on several buses is `EventIdAmbiguous` (409), since CloudEvent
 * ids are chosen by producers and need only be unique per source.
 *
 * What the trace can show is bounded by what is kept: the event while the log keeps it
 * (`log.retentionHours`), pending deliveries until they end, dead letters until purged, and
 * succeeded deliveries for `delivery.traceRetentionHours` after their success. Credential-like
 * header values are shown as "***", as on the dead-letter routes.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type {
  AttemptRecord,
  DeadLetter,
  EventDeliveries,
  TracedDelivery,
} from "../../log/log-engine.js";
import type { StoredEvent } from "../../types.js";
import { dispatchedOffset, type ControlPlaneDeps } from "../control-plane-deps.js";
import { redactHeaders } from "../redact-secrets.js";
import { methodNotAllowed, queryParam } from "../request-params.js";

/** How the story of an event ended (so far). */
export const TRACE_ENDINGS = [
  /** Every delivery succeeded. */
  "delivered",
  /** Not dispatched yet, or some delivery is still pending (waiting for a retry, or in flight). */
  "pending",
  /** Every delivery was dead-lettered. */
  "dead-lettered",
  /** Some deliveries succeeded and the others were dead-lettered. */
  "partly dead-lettered",
  /** Dispatched, and no delivery on record though the trace is complete: no rule matched. */
  "no rules matched",
  /**
   * No delivery on record and the trace is not complete: deliveries the event had may have
   * succeeded and been pruned since.
   */
  "unknown",
] as const;
export type TraceEnding = (typeof TRACE_ENDINGS)[number];

/** One attempt as a trace shows it. */
export interface TraceAttempt {
  attempt: number;
  /** When it started, RFC 3339. */
  at: string;
  status?: number;
  latencyMs: number;
  outcome: AttemptRecord["outcome"];
  error?: string;
}

/** One delivery (event × target) as a trace shows it. */
export interface TraceDelivery {
  deliveryId: string;
  rule: string;
  targetId: string;
  url: string;
  state: "pending" | "succeeded" | "dead-lettered";
  /** When the dispatcher recorded it (matched and built the payload), RFC 3339. */
  createdAt: string;
  /** The request as sent: headers (credentials redacted) and the body, the transform's output. */
  payload: { headers: Record<string, string>; body: string };
  attempts: TraceAttempt[];
  /** Pending: when the next attempt is due (for one in flight, when its lease runs out). */
  nextAttemptAt?: string;
  /** Succeeded: when. */
  finishedAt?: string;
  /** Dead-lettered: why and when. */
  deadLetter?: { reason: string; at: string };
}

/** The answer of `GET /v1/events/{id}/trace`. */
export interface EventTrace {
  eventId: string;
  bus: string;
  /** The event as the log holds it; null once the log's retention has deleted it. */
  received: {
    at: string;
    offset: number;
    sizeBytes: number;
    units: number;
    source: string;
    type: string;
  } | null;
  /** Whether the dispatcher has passed the event (run it through the rules). */
  dispatched: boolean;
  /**
   * Whether every delivery of the event is still on record: the event was received within
   * `delivery.traceRetentionHours`, so none of its succeeded deliveries can have been pruned.
   * When false, `deliveries` and `ended` tell what is left. (Dead letters purged by hand are
   * gone either way.)
   */
  complete: boolean;
  /** The rules that matched, in the order of their deliveries. */
  matchedRules: string[];
  deliveries: TraceDelivery[];
  ended: TraceEnding;
}

/** What one bus knows of an event id. */
interface Found {
  bus: string;
  stored: StoredEvent | undefined;
  records: EventDeliveries;
}

export function createEventTraceRouter(deps: ControlPlaneDeps): Router {
  const { registry, storage } = deps;
  const router = Router();

  const lookUp = async (bus: string, id: string): Promise<Found | undefined> => {
    const stored = await storage.log.findById(bus, id);
    const records = storage.deliveries.deliveriesOfEvent(bus, id);
    // Bodies kept by reference are the event's stored JSON.
    for (const delivery of records.deliveries) {
      if (delivery.bodyByReference === true && stored !== undefined) delivery.request.body = stored.json;
    }
    if (
      stored === undefined &&
      records.deliveries.length === 0 &&
      records.deadLetters.length === 0
    ) {
      return undefined;
    }
    return { bus, stored, records };
  };

  router
    .route("/v1/events/:id/trace")
    .get(async (req, res) => {
      const id = req.params.id;
      const bus = queryParam(req, "bus");
      let found: Found[];
      if (bus !== undefined) {
        registry.assertBusExists(bus);
        const one = await lookUp(bus, id);
        found = one === undefined ? [] : [one];
      } else {
        const buses = registry.listBuses().map((b) => b.name);
        found = (await Promise.all(buses.map((b) => lookUp(b, id)))).filter((f) => f !== undefined);
      }
      if (found.length === 0) {
        const where = bus === undefined ? "on any bus" : `on bus ${JSON.stringify(bus)}`;
        throw new RelaybusError(
          "EventNotFound",
          `event ${JSON.stringify(id)}: nothing is known of it ${where} (never published, or past the log's and the trace's retention)`,
          { details: { eventId: id, ...(bus === undefined ? {} : { bus }) } },
        );
      }
      if (found.length > 1) {
        const buses = found.map((f) => f.bus);
        throw new RelaybusError(
          "EventIdAmbiguous",
          `event ${JSON.stringify(id)} is on several buses (${buses.join(", ")}); name one with ?bus=`,
          { details: { eventId: id, buses } },
        );
      }
      const traceRetentionMs = deps.config.delivery.traceRetentionHours * 3_600_000;
      const eventBus = found[0]!.bus;
      const shared = deps.dispatchedThrough !== undefined;
      const through = await dispatchedOffset(deps, eventBus);
      res.json(describeTrace(id, found[0]!, through, Date.now() - traceRetentionMs, shared));
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}

/**
 * The trace of what one bus knows of an event. `checkpoint` is the dispatcher's offset on the
 * bus; `keptSinceMs` the oldest success the trace retention still keeps. `shared`: dispatch is
 * shared by a cluster, `checkpoint` is the cluster's finished floor, and an event past it was
 * dispatched once this node recorded its deliveries (its dead letters may come first: a
 * delivery whose transform fails is dead-lettered while the others are built).
 */
function describeTrace(
  eventId: string,
  found: Found,
  checkpoint: number,
  keptSinceMs: number,
  shared: boolean,
): EventTrace {
  const { stored, records } = found;
  const deliveries = [
    ...records.deliveries.map(describeDelivery),
    ...records.deadLetters.map(describeDeadLetter),
  ].sort((a, b) => a.createdAtMs - b.createdAtMs);
  // The log never drops an event the dispatcher has not passed; gone from the log means passed.
  const dispatched =
    stored === undefined || stored.offset <= checkpoint || (shared && records.deliveries.length > 0);
  // A success comes after its event's arrival, and pruning deletes successes older than the
  // retention: an event received within it has all its successes still.
  const complete = stored !== undefined && stored.receivedAtMs >= keptSinceMs;
  return {
    eventId,
    bus: found.bus,
    received:
      stored === undefined
        ? null
        : {
            at: iso(stored.receivedAtMs),
            offset: stored.offset,
            sizeBytes: stored.sizeBytes,
            units: stored.units,
            source: stored.event.source,
            type: stored.event.type,
          },
    dispatched,
    complete,
    matchedRules: [...new Set(deliveries.map((d) => d.trace.rule))],
    deliveries: deliveries.map((d) => d.trace),
    ended: ending(
      dispatched,
      deliveries.map((d) => d.trace.state),
      complete,
    ),
  };
}

function ending(
  dispatched: boolean,
  states: readonly TraceDelivery["state"][],
  complete: boolean,
): TraceEnding {
  if (!dispatched || states.includes("pending")) return "pending";
  if (states.length === 0) return complete ? "no rules matched" : "unknown";
  const dead = states.filter((s) => s === "dead-lettered").length;
  if (dead === 0) return "delivered";
  return dead === states.length ? "dead-lettered" : "partly dead-lettered";
}

interface Sortable {
  createdAtMs: number;
  trace: TraceDelivery;
}

function describeDelivery(d: TracedDelivery): Sortable {
  const trace = baseOf(d, d.finishedAtMs === undefined ? "pending" : "succeeded");
  if (d.finishedAtMs === undefined) trace.nextAttemptAt = iso(d.nextAttemptAtMs);
  else trace.finishedAt = iso(d.finishedAtMs);
  return { createdAtMs: d.createdAtMs, trace };
}

function describeDeadLetter(d: DeadLetter): Sortable {
  const trace = baseOf(d, "dead-lettered");
  trace.deadLetter = { reason: d.reason, at: iso(d.deadAtMs) };
  return { createdAtMs: d.createdAtMs, trace };
}

function baseOf(d: TracedDelivery | DeadLetter, state: TraceDelivery["state"]): TraceDelivery {
  return {
    deliveryId: d.id,
    rule: d.rule,
    targetId: d.targetId,
    url: d.request.url,
    state,
    createdAt: iso(d.createdAtMs),
    payload: { headers: redactHeaders(d.request.headers), body: d.request.body },
    attempts: d.attempts.map(describeAttempt),
  };
}

function describeAttempt(a: AttemptRecord): TraceAttempt {
  return {
    attempt: a.attempt,
    at: iso(a.startedAtMs),
    ...(a.status === undefined ? {} : { status: a.status }),
    latencyMs: a.durationMs,
    outcome: a.outcome,
    ...(a.error === undefined ? {} : { error: a.error }),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
