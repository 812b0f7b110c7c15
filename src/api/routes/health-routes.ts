/** `GET /healthz`: is the service up, and which version. */
import { Router } from "express";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed } from "../request-params.js";

export function createHealthRouter(deps: ControlPlaneDeps): Router {
  const router = Router();
  router
    .route("/healthz")
    .get((_req, res) => {
      res.json({ status: "ok", version: deps.version });
    })
    .all(methodNotAllowed(["GET"]));
  return router;
}
