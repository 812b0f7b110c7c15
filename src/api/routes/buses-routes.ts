/** Buses: `GET/POST /v1/buses`, `GET/DELETE /v1/buses/{bus}` (`?force=true` deletes a bus with rules). */
import { Router } from "express";
import { NAME_PATTERN } from "../../rules/model.js";
import { dispatchedOffset, type ControlPlaneDeps } from "../control-plane-deps.js";
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
      const bus = registry.createBus(parseCreateBus(req.body));
      deps.audit.record(req, { action: "bus.create", resource: `buses/${bus.name}`, after: bus });
      res.status(201).json(bus);
    })
    .all(methodNotAllowed(["GET", "POST"]));

  router
    .route("/v1/buses/:bus")
    .get(async (req, res) => {
      const name = req.params.bus;
      registry.assertBusExists(name);
      const bus = registry.listBuses().find((b) => b.name === name);
      // The dispatch offset first: read after the log's, it could pass it by events appended meanwhile.
      const dispatched = await dispatchedOffset(deps, name);
      res.json({ ...bus, lastOffset: await storage.log.lastOffset(name), dispatchedOffset: dispatched });
    })
    .delete((req, res) => {
      const name = req.params.bus;
      const force = booleanParam(req, "force", false);
      // The bus and the API rules a forced delete takes with it.
      const before = registry.busExists(name) ? busBeforeDelete(name) : undefined;
      registry.deleteBus(name, { force });
      storage.targetSecrets.deleteSecretsOf(name);
      storage.targetStates.deleteStatesOf(name);
      deps.audit.record(req, { action: "bus.delete", resource: `buses/${name}`, before });
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "DELETE"]));

  function busBeforeDelete(name: string) {
    const apiRules = registry.listRules(name).filter((rule) => rule.origin.kind === "api");
    return { ...registry.listBuses().find((bus) => bus.name === name), apiRules: apiRules.map((rule) => rule.name) };
  }

  return router;
}
