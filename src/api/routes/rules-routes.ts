/**
 * Rules of a bus: list, create, get, replace, delete, enable, disable, and reload the files.
 *
 * - `GET|POST /v1/buses/{bus}/rules`
 * - `GET|PUT|DELETE /v1/buses/{bus}/rules/{name}`
 * - `POST /v1/buses/{bus}/rules/{name}:enable` and `:disable` (custom methods, as in Google's AIP)
 * - `POST /v1/rules:reload`: reload the rule files; refused whole if any file has a problem.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { RuleDefinition } from "../../rules/model.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";

const CUSTOM_METHODS = ["enable", "disable"] as const;

export function createRulesRouter(deps: ControlPlaneDeps): Router {
  const { registry } = deps;
  const router = Router();

  const requireBus = (bus: string) => {
    if (!registry.busExists(bus)) throw new RelaybusError("BusNotFound", `bus ${JSON.stringify(bus)} does not exist`);
  };

  router.post("/v1/rules\\:reload", async (_req, res) => {
    const summary = await registry.reloadFiles();
    res.json(summary);
  });

  router.get("/v1/buses/:bus/rules", (req, res) => {
    requireBus(req.params.bus);
    res.json({ rules: registry.listRules(req.params.bus) });
  });

  router.post("/v1/buses/:bus/rules", (req, res) => {
    requireBus(req.params.bus);
    const rule = registry.putRule(req.params.bus, req.body as RuleDefinition, { mode: "create" });
    res.status(201).json(rule);
  });

  router.get("/v1/buses/:bus/rules/:name", (req, res) => {
    requireBus(req.params.bus);
    res.json(registry.getRule(req.params.bus, req.params.name));
  });

  router.put("/v1/buses/:bus/rules/:name", (req, res) => {
    requireBus(req.params.bus);
    const body = req.body as Partial<RuleDefinition> | undefined;
    if (body !== undefined && typeof body === "object" && body !== null && body.name !== undefined && body.name !== req.params.name) {
      throw new RelaybusError("ValidationError", `body.name: ${JSON.stringify(body.name)} differs from the rule in the path (${JSON.stringify(req.params.name)})`);
    }
    const definition = { ...(body as object), name: req.params.name } as RuleDefinition;
    res.json(registry.putRule(req.params.bus, definition, { mode: "replace" }));
  });

  router.delete("/v1/buses/:bus/rules/:name", (req, res) => {
    requireBus(req.params.bus);
    registry.deleteRule(req.params.bus, req.params.name);
    res.status(204).end();
  });

  // `{name}:enable` and `{name}:disable`: rule names cannot hold ':', so the split is exact.
  router.post("/v1/buses/:bus/rules/:nameAndMethod", (req, res) => {
    requireBus(req.params.bus);
    const [name, method, ...rest] = req.params.nameAndMethod.split(":");
    if (name === undefined || rest.length > 0 || !CUSTOM_METHODS.includes(method as never)) {
      throw new RelaybusError("RouteNotFound", `no route for POST ${req.path} (rule methods: ${CUSTOM_METHODS.map((m) => `:${m}`).join(", ")})`);
    }
    res.json(registry.setEnabled(req.params.bus, name, method === "enable"));
  });

  return router;
}
