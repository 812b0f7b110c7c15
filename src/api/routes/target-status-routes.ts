/**
 * The health of a target, and turning it off and on:
 *
 * - `GET /v1/buses/{bus}/rules/{rule}/targets/{target}/status`: enabled or disabled and why,
 *   since when it has been failing, and its circuit breaker as the delivery engine holds it.
 * - `POST .../targets/{target}:disable` (body optional: `{"reason": "..."}`): stops
 *   deliveries to it; they are dead-lettered with the reason `target disabled: ...` (see
 *   src/delivery/target-health.ts), so they can be redriven once it is enabled.
 * - `POST .../targets/{target}:enable`: delivers to it again and forgets its failing run.
 *
 * A target's state is runtime state, not definition: these work on targets of rule files and
 * of the API alike, and a reload keeps them.
 */
import { Router, type Request } from "express";
import type { CircuitSnapshot, CircuitState } from "../../delivery/circuit-breaker.js";
import { RelaybusError } from "../../errors.js";
import type {
  StoredTargetState,
  TargetAddress,
  TargetDisableCause,
  TargetStateName,
} from "../../log/target-state-store.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

/** Longest `reason` of a disable request, in characters. */
export const MAX_DISABLE_REASON_LENGTH = 512;
/** The reason of a target disabled through the API, before the caller's own words. */
export const API_DISABLE_REASON = "disabled through the API";

/**
 * The routes; `\\:` is a literal colon (express 5). Typed as plain strings because express's
 * type-level path parser does not know that escape (see rules-dry-run-routes.ts).
 */
const STATUS_PATH = "/v1/buses/:bus/rules/:rule/targets/:target/status";
const ENABLE_PATH: string = "/v1/buses/:bus/rules/:rule/targets/:target\\:enable";
const DISABLE_PATH: string = "/v1/buses/:bus/rules/:rule/targets/:target\\:disable";

/** A target's health as the API shows it; times are ISO 8601. */
export interface TargetStatusView {
  state: TargetStateName;
  /** While disabled: why, as a sentence. */
  reason?: string;
  /** While disabled: `gone` (410), `failing` (too long without a success) or `api`. */
  cause?: TargetDisableCause;
  disabledAt?: string;
  /** When its current run of failures began; absent while it is not failing. */
  failingSince?: string;
  /** Its circuit, when the delivery engine holds one for it. */
  circuit?: { state: CircuitState; openUntil?: string; consecutiveFailures: number };
}

interface DisableBody {
  reason?: string;
}

const parseDisable = compileBodyValidator<DisableBody>({
  type: "object",
  additionalProperties: false,
  properties: { reason: { type: "string", minLength: 1, maxLength: MAX_DISABLE_REASON_LENGTH } },
});
const parseEnable = compileBodyValidator<Record<string, never>>({
  type: "object",
  additionalProperties: false,
  properties: {},
});

/** The status view of a stored state (undefined: never written, so enabled) and a live circuit. */
export function targetStatusView(
  stored: StoredTargetState | undefined,
  circuit?: CircuitSnapshot,
): TargetStatusView {
  const iso = (ms: number) => new Date(ms).toISOString();
  const view: TargetStatusView = { state: stored?.state ?? "enabled" };
  if (stored?.state === "disabled") {
    view.reason = stored.reason ?? API_DISABLE_REASON;
    if (stored.cause !== undefined) view.cause = stored.cause;
    if (stored.disabledAtMs !== undefined) view.disabledAt = iso(stored.disabledAtMs);
  }
  if (stored?.failingSinceMs !== undefined) view.failingSince = iso(stored.failingSinceMs);
  if (circuit !== undefined) {
    view.circuit = {
      state: circuit.state,
      ...(circuit.openUntilMs === undefined ? {} : { openUntil: iso(circuit.openUntilMs) }),
      consecutiveFailures: circuit.consecutiveFailures,
    };
  }
  return view;
}

export function createTargetStatusRouter(deps: ControlPlaneDeps): Router {
  const { registry, logger } = deps;
  const states = deps.storage.targetStates;
  const router = Router();

  /** The target named in the path; BusNotFound, RuleNotFound, TargetNotFound. */
  function targetOf(req: Request): TargetAddress {
    // Named segments, never wildcard arrays (see the paths above).
    const { bus, rule, target } = req.params as { bus: string; rule: string; target: string };
    registry.getRule(bus, rule); // BusNotFound, RuleNotFound
    if (registry.findTarget(bus, rule, target) === undefined) {
      throw new RelaybusError(
        "TargetNotFound",
        `rule ${JSON.stringify(rule)} of bus ${JSON.stringify(bus)} has no target ${JSON.stringify(target)}`,
        { details: { bus, rule, target } },
      );
    }
    return { bus, rule, targetId: target };
  }

  function statusOf(address: TargetAddress): TargetStatusView {
    const circuit = deps.targetCircuit?.(address.bus, address.rule, address.targetId);
    return targetStatusView(states.get(address), circuit);
  }

  router
    .route(STATUS_PATH)
    .get((req, res) => {
      res.json(statusOf(targetOf(req)));
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route(DISABLE_PATH)
    .post((req, res) => {
      const address = targetOf(req);
      const body = req.body === undefined ? {} : parseDisable(req.body);
      const reason = body.reason === undefined ? API_DISABLE_REASON : `${API_DISABLE_REASON}: ${body.reason}`;
      const before = states.get(address);
      const statusBefore = statusOf(address);
      // Already disabled: the first reason stays (it is the one to fix).
      states.disable(address, { reason, cause: "api", atMs: Date.now() });
      const status = statusOf(address);
      if (before?.state !== "disabled") {
        logger.info("target disabled", { ...address, cause: "api", reason });
        deps.audit.record(req, { action: "target.disable", resource: targetResource(address), before: statusBefore, after: status });
      }
      res.json(status);
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route(ENABLE_PATH)
    .post((req, res) => {
      const address = targetOf(req);
      if (req.body !== undefined) parseEnable(req.body);
      const before = states.get(address);
      const statusBefore = statusOf(address);
      states.enable(address, Date.now());
      const status = statusOf(address);
      if (before?.state === "disabled") {
        logger.info("target enabled", { ...address, wasDisabledFor: before.reason });
        deps.audit.record(req, { action: "target.enable", resource: targetResource(address), before: statusBefore, after: status });
      }
      res.json(status);
    })
    .all(methodNotAllowed(["POST"]));

  return router;
}

/** The audit log's path of a target. */
function targetResource(address: TargetAddress): string {
  return `buses/${address.bus}/rules/${address.rule}/targets/${address.targetId}`;
}
