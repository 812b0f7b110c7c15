/** Buses: `GET/POST /v1/buses`, `GET/DELETE /v1/buses/{bus}` (`?force=true` deletes a bus with rules). */
import { Router } from "express";
import { NAME_PATTERN } from "../../rules/model.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { booleanParam, methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

interface CreateBusBody {
  name: string;
  description?: string;
  /** A system bus: metered like any bus, priced at 0. */
  system?: boolean;
}

const parseCreateBus = compileBodyValidator<CreateBusBody>({
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string", pattern: NAME_PATTERN.source },
    description: { type: "string", maxLength: 512 },
    system: { type: "boolean" },
  },
});

export function createBusesRouter(deps: ControlPlaneDeps): Router {
  const { registry, storage } = deps;
  const router = Router();

  router
    .route("/v1/buses")
    .get((_req, res) => {
      res.json({ buses: registry.listBuses() });
    })
    .post((req, res) => {
      res.status(201).json(registry.createBus(parseCreateBus(req.body)));
    })
    .all(methodNotAllowed(["GET", "POST"]));

  router
    .route("/v1/buses/:bus")
    .get(async (req, res) => {
      const name = req.params.bus;
      registry.assertBusExists(name);
      const bus = registry.listBuses().find((b) => b.name === name);
      res.json({ ...bus, lastOffset: await storage.log.lastOffset(name) });
    })
    .delete((req, res) => {
      registry.deleteBus(req.params.bus, { force: booleanParam(req, "force", false) });
      storage.targetSecrets.deleteSecretsOf(req.params.bus);
      storage.targetStates.deleteStatesOf(req.params.bus);
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "DELETE"]));

  return router;
}
