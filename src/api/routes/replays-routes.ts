/**
 * Replays: the events of a time window sent again, from an archive or from a bus's log, to
 * a bus's rules, one rule, or one target, in log order, marked as replays.
 *
 * - `POST /v1/replays`: `{"name", "source": {"archive"} | {"bus"}, "fromTime", "toTime",
 *   "destination": {"bus", "rule"?, "targetId"?}, "description"?}`; times are ms since the
 *   epoch or RFC 3339, both ends inclusive, on when the log received each event.
 * - `GET /v1/replays[?limit=N]`, `GET /v1/replays/{name}`: state and progress.
 * - `POST /v1/replays/{name}:cancel`: stops it after the batch in progress.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { ReplayDestination, ReplaySource, StoredReplay } from "../../log/replay-store.js";
import { NAME_PATTERN } from "../../rules/model.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { parseTime } from "../dead-letter-redrive.js";
import { limitParam, methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

/** Replays that may run at once: each one reads and enqueues as fast as delivery drains. */
export const MAX_RUNNING_REPLAYS = 10;

/**
 * The route; `\\:` is a literal colon (express 5). Typed as a plain string because express's
 * type-level path parser does not know that escape. Registered before `/v1/replays/:name`,
 * which would otherwise take `name:cancel` whole.
 */
const CANCEL_PATH: string = "/v1/replays/:name\\:cancel";

/** A replay as the API shows it. */
export interface ReplayView {
  name: string;
  description?: string;
  source: ReplaySource;
  destination: ReplayDestination;
  /** The window, on when the log received each event, both ends inclusive (ms since the epoch). */
  fromMs: number;
  toMs: number;
  state: StoredReplay["state"];
  /** Events in the window; once completed, the events replayed. */
  total: number;
  /** Events handed to delivery so far. */
  replayed: number;
  /** `replayed` out of `total`, 0 to 100 (100 once completed). */
  percent: number;
  /** Deliveries recorded so far, and those of them still pending. */
  deliveries: number;
  pendingDeliveries: number;
  /** The offset handed over last, and the window's last offset. */
  lastOffset: number;
  endOffset: number;
  startedAtMs: number;
  endedAtMs?: number;
  error?: string;
}

interface StartReplayBody {
  name: string;
  description?: string;
  source: { archive?: string; bus?: string };
  fromTime: number | string;
  toTime: number | string;
  destination: { bus: string; rule?: string; targetId?: string };
}

const NAME = { type: "string", pattern: NAME_PATTERN.source };
/** Any JSON here: `parseTime` reads it (ms since the epoch or RFC 3339) and names the field. */
const TIME = {};

const parseStartReplay = compileBodyValidator<StartReplayBody>({
  type: "object",
  additionalProperties: false,
  required: ["name", "source", "fromTime", "toTime", "destination"],
  properties: {
    name: NAME,
    description: { type: "string", maxLength: 512 },
    source: {
      type: "object",
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: { archive: NAME, bus: NAME },
    },
    fromTime: TIME,
    toTime: TIME,
    destination: {
      type: "object",
      additionalProperties: false,
      required: ["bus"],
      properties: { bus: NAME, rule: NAME, targetId: NAME },
      dependencies: { targetId: ["rule"] },
    },
  },
});

export function createReplaysRouter(deps: ControlPlaneDeps): Router {
  const { registry } = deps;
  const { replays, archives } = deps.storage;
  const router = Router();

  router
    .route("/v1/replays")
    .get((req, res) => {
      const limit = limitParam(req, 100);
      res.json({ replays: replays.list(limit).map((r) => toView(deps, r)) });
    })
    .post(async (req, res) => {
      const body = parseStartReplay(req.body);
      const fromMs = parseTime(body.fromTime, "fromTime");
      const toMs = parseTime(body.toTime, "toTime");
      if (fromMs > toMs) {
        throw new RelaybusError(
          "ValidationError",
          `toTime: must not be before fromTime (${new Date(fromMs).toISOString()})`,
        );
      }
      let source: ReplaySource;
      if (body.source.archive !== undefined) {
        if (archives.get(body.source.archive) === undefined) {
          throw new RelaybusError(
            "ArchiveNotFound",
            `source.archive: archive "${body.source.archive}" does not exist`,
            {
              details: { archive: body.source.archive },
            },
          );
        }
        source = { archive: body.source.archive };
      } else {
        registry.assertBusExists(body.source.bus!);
        source = { bus: body.source.bus! };
      }
      const destination = checkDestination(deps, body.destination);
      if (replays.get(body.name) !== undefined) {
        throw new RelaybusError(
          "ReplayAlreadyExists",
          `replay "${body.name}" already exists; replay names are never reused`,
          {
            details: { replay: body.name },
          },
        );
      }
      if (replays.listRunning().length >= MAX_RUNNING_REPLAYS) {
        throw new RelaybusError(
          "ValidationError",
          `name: at most ${MAX_RUNNING_REPLAYS} replays run at once; wait for one to end or cancel one`,
          { details: { limit: MAX_RUNNING_REPLAYS } },
        );
      }
      const started = await deps.replays.start({
        name: body.name,
        ...(body.description === undefined ? {} : { description: body.description }),
        source,
        fromMs,
        toMs,
        destination,
      });
      const view = toView(deps, started);
      deps.audit.record(req, { action: "replay.start", resource: `replays/${started.name}`, after: view });
      res.status(201).json(view);
    })
    .all(methodNotAllowed(["GET", "POST"]));

  router
    .route(CANCEL_PATH)
    .post((req, res) => {
      const { name } = req.params as { name: string };
      const previous = replays.get(name);
      const view = toView(deps, deps.replays.cancel(name));
      if (previous !== undefined && previous.state !== view.state) {
        deps.audit.record(req, { action: "replay.cancel", resource: `replays/${name}`, before: toView(deps, previous), after: view });
      }
      res.json(view);
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/v1/replays/:name")
    .get((req, res) => {
      const found = replays.get(req.params.name);
      if (found === undefined) {
        throw new RelaybusError("ReplayNotFound", `replay "${req.params.name}" does not exist`, {
          details: { replay: req.params.name },
        });
      }
      res.json(toView(deps, found));
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}

/** The destination, checked: its bus, rule and target exist (`BusNotFound`, `RuleNotFound`, `TargetNotFound`). */
function checkDestination(
  deps: ControlPlaneDeps,
  given: StartReplayBody["destination"],
): ReplayDestination {
  deps.registry.assertBusExists(given.bus);
  if (given.rule === undefined) return { bus: given.bus };
  const rule = deps.registry.getRule(given.bus, given.rule);
  if (given.targetId === undefined) return { bus: given.bus, rule: given.rule };
  if (!(rule.definition.targets ?? []).some((t) => t.id === given.targetId)) {
    throw new RelaybusError(
      "TargetNotFound",
      `destination.targetId: rule "${given.rule}" of bus "${given.bus}" has no target "${given.targetId}"`,
      { details: { bus: given.bus, rule: given.rule, targetId: given.targetId } },
    );
  }
  return { bus: given.bus, rule: given.rule, targetId: given.targetId };
}

function toView(deps: ControlPlaneDeps, r: StoredReplay): ReplayView {
  const percent =
    r.state === "completed"
      ? 100
      : r.total === 0
        ? 0
        : Math.min(100, Math.floor((r.replayed * 100) / r.total));
  return {
    name: r.name,
    ...(r.description === undefined ? {} : { description: r.description }),
    source: r.source,
    destination: r.destination,
    fromMs: r.fromMs,
    toMs: r.toMs,
    state: r.state,
    total: r.total,
    replayed: r.replayed,
    percent,
    deliveries: r.deliveries,
    pendingDeliveries: deps.storage.replays.pendingDeliveries(r.name),
    lastOffset: r.lastOffset,
    endOffset: r.endOffset,
    startedAtMs: r.startedAtMs,
    ...(r.endedAtMs === undefined ? {} : { endedAtMs: r.endedAtMs }),
    ...(r.error === undefined ? {} : { error: r.error }),
  };
}
