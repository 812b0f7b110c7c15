/** `GET /healthz`: is the service up, and which version. */
import { Router } from "express";
import type { ControlPlaneDeps } from "../control-plane-deps.js";

export function createHealthRouter(deps: ControlPlaneDeps): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok", version: deps.version });
  });
  return router;
}
