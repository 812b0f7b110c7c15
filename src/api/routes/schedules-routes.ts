/**
 * Schedules that put events on buses (declared under `schedules:` in rule files), read-only:
 *
 * - `GET /v1/schedules`: every schedule with where it is written and how it is doing (next
 *   fire, last fire, last error).
 * - `GET /v1/schedules/{name}`: one of them.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed } from "../request-params.js";

export function createSchedulesRouter(deps: ControlPlaneDeps): Router {
  const router = Router();
  router
    .route("/v1/schedules")
    .get((_req, res) => {
      res.json({ schedules: deps.schedules() });
    })
    .all(methodNotAllowed(["GET"]));
  router
    .route("/v1/schedules/:name")
    .get((req, res) => {
      const found = deps.schedules().find((s) => s.name === req.params.name);
      if (found === undefined) {
        throw new RelaybusError("ScheduleNotFound", `schedule ${JSON.stringify(req.params.name)} does not exist`, {
          details: { schedule: req.params.name },
        });
      }
      res.json(found);
    })
    .all(methodNotAllowed(["GET"]));
  return router;
}
