/** Buses: `GET/POST /v1/buses`, `GET/DELETE /v1/buses/{bus}`. */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import { NAME_PATTERN } from "../../rules/model.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
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

  const describeBus = async (name: string) => {
    const bus = registry.listBuses().find((b) => b.name === name);
    if (bus === undefined) throw new RelaybusError("BusNotFound", `bus ${JSON.stringify(name)} does not exist`);
    return { ...bus, lastOffset: await storage.log.lastOffset(name) };
  };

  router.get("/v1/buses", (_req, res) => {
    res.json({ buses: registry.listBuses() });
  });

  router.post("/v1/buses", (req, res) => {
    const body = parseCreateBus(req.body);
    if (registry.busExists(body.name)) {
      throw new RelaybusError("BusAlreadyExists", `bus ${JSON.stringify(body.name)} already exists`);
    }
    storage.catalog.createBus({
      name: body.name,
      createdAtMs: Date.now(),
      ...(body.description === undefined ? {} : { description: body.description }),
    });
    res.status(201).json(registry.listBuses().find((b) => b.name === body.name));
  });

  router.get("/v1/buses/:bus", async (req, res) => {
    res.json(await describeBus(req.params.bus));
  });

  router.delete("/v1/buses/:bus", (req, res) => {
    const name = req.params.bus;
    const force = req.query.force === "true";
    registry.deleteBus(name, { force });
    res.status(204).end();
  });

  return router;
}
