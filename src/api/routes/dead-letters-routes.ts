/**
 * Dead letters: `GET /v1/dead-letters` (filters: bus, rule, target, limit, before) and
 * `GET /v1/dead-letters/{id}`. Credential-like header values are shown as "***".
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { DeadLetterFilter } from "../../log/log-engine.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { redactSecrets } from "../redact-secrets.js";
import { integerParam, limitParam, methodNotAllowed, queryParam } from "../request-params.js";

export function createDeadLettersRouter(deps: ControlPlaneDeps): Router {
  const { deliveries } = deps.storage;
  const router = Router();

  router
    .route("/v1/dead-letters")
    .get((req, res) => {
      const filter: DeadLetterFilter = { limit: limitParam(req, 100) };
      const bus = queryParam(req, "bus");
      const rule = queryParam(req, "rule");
      const target = queryParam(req, "target");
      if (bus !== undefined) filter.bus = bus;
      if (rule !== undefined) filter.rule = rule;
      if (target !== undefined) filter.targetId = target;
      // `before`: ms since the epoch, for paging newest first.
      if (queryParam(req, "before") !== undefined) filter.beforeMs = integerParam(req, "before", 0);
      res.json({ deadLetters: redactSecrets(deliveries.listDeadLetters(filter)) });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route("/v1/dead-letters/:id")
    .get((req, res) => {
      const found = deliveries.getDeadLetter(req.params.id);
      if (found === undefined) {
        throw new RelaybusError("DeadLetterNotFound", `dead letter ${JSON.stringify(req.params.id)} does not exist`);
      }
      res.json(redactSecrets(found));
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}
