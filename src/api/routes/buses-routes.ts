/** Buses: `GET/POST /v1/buses`, `GET/DELETE /v1/buses/{bus}` (`?force=true` deletes a bus with rules). */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import { NAME_PATTERN } from "../../rules/model.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { booleanParam, methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

interface CreateBusBody {
  name: string;
  description?: string;
}

const parseCreateBus = compileBodyValidator<CreateBusBody>({
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string", pattern: NAME_PATTERN.source },
    description: { type: "string", maxLength: 512 },
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
      const body = parseCreateBus(req.body);
      if (registry.busExists(body.name)) {
        throw new RelaybusError("BusAlreadyExists", `bus ${JSON.stringify(body.name)} already exists`);
      }
      storage.catalog.createBus({
        name: body.name,
        createdAtMs: Date.now(),
        ...(body.description === undefined ? {} : { description: body.description }),
      });
      registry.reloadCatalog();
      res.status(201).json(registry.listBuses().find((b) => b.name === body.name));
    })
    .all(methodNotAllowed(["GET", "POST"]));

  router
    .route("/v1/buses/:bus")
    .get(async (req, res) => {
      const name = req.params.bus;
      const bus = registry.listBuses().find((b) => b.name === name);
      if (bus === undefined) throw new RelaybusError("BusNotFound", `bus ${JSON.stringify(name)} does not exist`);
      res.json({ ...bus, lastOffset: await storage.log.lastOffset(name) });
    })
    .delete((req, res) => {
      registry.deleteBus(req.params.bus, { force: booleanParam(req, "force", false) });
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "DELETE"]));

  return router;
}
