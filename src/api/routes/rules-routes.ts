/**
 * Rules of a bus: list, create, get, replace, delete, enable, disable, and reload the files.
 *
 * - `GET|POST /v1/buses/{bus}/rules`
 * - `GET|PUT|DELETE /v1/buses/{bus}/rules/{name}`
 * - `POST /v1/buses/{bus}/rules/{name}:enable` and `:disable` (custom methods, as in Google's AIP)
 * - `POST /v1/rules:reload`: reload the rule files; refused whole if any file has a problem.
 * - `POST /v1/buses/{bus}/rules/{name}:dry-run` lives in rules-dry-run-routes.ts.
 *
 * Credential-like webhook header values are shown as "***" (see redact-secrets.ts).
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { redactSecrets } from "../redact-secrets.js";
import { methodNotAllowed, objectBody } from "../request-params.js";
import { targetStatusView, type TargetStatusView } from "./target-status-routes.js";

const CUSTOM_METHODS = ["enable", "disable"] as const;

export function createRulesRouter(deps: ControlPlaneDeps): Router {
  const { registry } = deps;
  const router = Router();

  const requireBus = (bus: string) => registry.assertBusExists(bus);
  /** The rule before a change, for the audit log; undefined leaves the route's own error to say why. */
  const ruleIfAny = (bus: string, name: string) =>
    registry.compiledRule(bus, name) === undefined ? undefined : registry.getRule(bus, name);

  router
    .route("/v1/rules\\:reload")
    .post(async (_req, res) => {
      res.json(await registry.reloadFiles());
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/v1/buses/:bus/rules")
    .get((req, res) => {
      requireBus(req.params.bus);
      res.json({ rules: redactSecrets(registry.listRules(req.params.bus)) });
    })
    .post((req, res) => {
      requireBus(req.params.bus);
      const rule = registry.putRule(req.params.bus, objectBody(req), { mode: "create" });
      deps.audit.record(req, { action: "rule.create", resource: ruleResource(rule.bus, rule.name), after: rule });
      res.status(201).json(redactSecrets(rule));
    })
    .all(methodNotAllowed(["GET", "POST"]));

  router
    .route("/v1/buses/:bus/rules/:name")
    .get((req, res) => {
      requireBus(req.params.bus);
      const { bus, name } = req.params;
      const rule = registry.getRule(bus, name);
      // Each target's health beside the definition (not in it: a GET-edit-PUT would send it back).
      const targetStatus: Record<string, TargetStatusView> = {};
      for (const target of rule.definition.targets ?? []) {
        const address = { bus, rule: name, targetId: target.id };
        targetStatus[target.id] = targetStatusView(
          deps.storage.targetStates.get(address),
          deps.targetCircuit?.(bus, name, target.id),
        );
      }
      res.json({ ...redactSecrets(rule), targetStatus });
    })
    .put((req, res) => {
      requireBus(req.params.bus);
      const body = objectBody(req);
      if (body.name !== undefined && body.name !== req.params.name) {
        throw new RelaybusError(
          "ValidationError",
          `body.name: ${JSON.stringify(body.name)} differs from the rule in the path (${JSON.stringify(req.params.name)})`,
        );
      }
      const before = ruleIfAny(req.params.bus, req.params.name);
      const rule = registry.putRule(req.params.bus, { ...body, name: req.params.name }, { mode: "replace" });
      deps.audit.record(req, { action: "rule.replace", resource: ruleResource(rule.bus, rule.name), before, after: rule });
      res.json(redactSecrets(rule));
    })
    .delete((req, res) => {
      requireBus(req.params.bus);
      const before = ruleIfAny(req.params.bus, req.params.name);
      registry.deleteRule(req.params.bus, req.params.name);
      deps.storage.targetSecrets.deleteSecretsOf(req.params.bus, req.params.name);
      deps.storage.targetStates.deleteStatesOf(req.params.bus, req.params.name);
      deps.audit.record(req, { action: "rule.delete", resource: ruleResource(req.params.bus, req.params.name), before });
      res.status(204).end();
    })
    // `{name}:enable` and `{name}:disable`: rule names cannot hold ':', so the split is exact.
    .post((req, res) => {
      requireBus(req.params.bus);
      const [name, method, ...rest] = req.params.name.split(":");
      if (name === undefined || method === undefined || rest.length > 0 || !CUSTOM_METHODS.includes(method as never)) {
        throw new RelaybusError(
          "MethodNotAllowed",
          `POST is allowed on a rule only as ${[...CUSTOM_METHODS, "dry-run"].map((m) => `{name}:${m}`).join(", ")}`,
        );
      }
      const before = ruleIfAny(req.params.bus, name);
      const rule = registry.setEnabled(req.params.bus, name, method === "enable");
      // Enabling an enabled rule changes nothing: no entry.
      if (rule.enabled !== before?.enabled) {
        const action = method === "enable" ? "rule.enable" : "rule.disable";
        deps.audit.record(req, { action, resource: ruleResource(rule.bus, name), before, after: rule });
      }
      res.json(redactSecrets(rule));
    })
    .all(methodNotAllowed(["GET", "PUT", "DELETE", "POST"]));

  return router;
}

/** The audit log's path of a rule. */
export function ruleResource(bus: string, rule: string): string {
  return `buses/${bus}/rules/${rule}`;
}
