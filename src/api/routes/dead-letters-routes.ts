/**
 * Dead letters:
 * - `GET /v1/dead-letters`: newest first; filters bus, rule, target, reason (a substring,
 *   ignoring case), from and to (ms since the epoch or RFC 3339), limit, before (paging);
 * - `GET /v1/dead-letters/{id}`: one, with its payload (the request) and every attempt;
 * - `DELETE /v1/dead-letters/{id}`: purge one;
 * - `POST /v1/dead-letters:redrive`: `{ids | filter | all: true, mode}` back to delivery;
 * - `POST /v1/dead-letters:purge`: `{ids | filter | all: true}` deleted.
 *
 * Credential-like header values are shown as "***" (the stored values are unchanged, and a
 * redrive sends them).
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { DeadLetterFilter, RedriveOptions } from "../../log/log-engine.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import {
  createCurrentTargetPlanner,
  parseSelectionFields,
  parseSelectorBody,
} from "../dead-letter-redrive.js";
import { redactSecrets } from "../redact-secrets.js";
import { integerParam, limitParam, methodNotAllowed, queryParam } from "../request-params.js";

/** Custom-method routes; `\\:` is a literal colon in express 5 paths. */
const REDRIVE_PATH = "/v1/dead-letters\\:redrive";
const PURGE_PATH = "/v1/dead-letters\\:purge";

export function createDeadLettersRouter(deps: ControlPlaneDeps): Router {
  const { deliveries } = deps.storage;
  const router = Router();

  router
    .route("/v1/dead-letters")
    .get((req, res) => {
      const query: Record<string, string | undefined> = {};
      for (const name of ["bus", "rule", "target", "reason", "from", "to"])
        query[name] = queryParam(req, name);
      const filter: DeadLetterFilter = {
        ...parseSelectionFields(query, ""),
        limit: limitParam(req, 100),
      };
      // `before`: ms since the epoch, for paging newest first.
      if (queryParam(req, "before") !== undefined) filter.beforeMs = integerParam(req, "before", 0);
      res.json({ deadLetters: redactSecrets(deliveries.listDeadLetters(filter)) });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route(REDRIVE_PATH)
    .post(async (req, res) => {
      const { selection, ids, mode } = parseSelectorBody(req.body, { modes: true });
      const notFound = ids?.filter((id) => deliveries.getDeadLetter(id) === undefined);
      const options: RedriveOptions = {};
      if (mode === "current") {
        options.prepare = createCurrentTargetPlanner({
          log: deps.storage.log,
          registry: deps.registry,
          transformTimeoutMs: deps.config.transform.timeoutMs,
          nowMs: Date.now,
        });
      }
      const result = await deliveries.redriveDeadLetters(selection, options);
      if (result.redriven > 0) deps.wakeDelivery?.();
      deps.logger.info("dead letters redriven", {
        mode,
        redriven: result.redriven,
        skipped: result.skipped,
      });
      const answer = {
        mode,
        redriven: result.redriven,
        skipped: result.skipped,
        skips: result.skips,
        ...(notFound === undefined ? {} : { notFound }),
      };
      // What was asked (the selector) and what it did; the dead letters themselves stay out.
      if (result.redriven > 0) {
        deps.audit.record(req, { action: "dead-letters.redrive", resource: "dead-letters", before: { selection }, after: answer });
      }
      res.json(answer);
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route(PURGE_PATH)
    .post(async (req, res) => {
      const { selection, ids } = parseSelectorBody(req.body, { modes: false });
      const notFound = ids?.filter((id) => deliveries.getDeadLetter(id) === undefined);
      const purged = await deliveries.purgeDeadLetters(selection);
      deps.logger.info("dead letters purged", { purged });
      if (purged > 0) {
        deps.audit.record(req, { action: "dead-letters.purge", resource: "dead-letters", before: { selection }, after: { purged } });
      }
      res.json({ purged, ...(notFound === undefined ? {} : { notFound }) });
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/v1/dead-letters/:id")
    .get((req, res) => {
      const found = deliveries.getDeadLetter(req.params.id);
      if (found === undefined) throw notFoundError(req.params.id);
      res.json(redactSecrets(found));
    })
    .delete(async (req, res) => {
      const purged = await deliveries.purgeDeadLetters({ ids: [req.params.id] });
      if (purged === 0) throw notFoundError(req.params.id);
      deps.audit.record(req, { action: "dead-letters.purge", resource: `dead-letters/${req.params.id}`, after: { purged } });
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "DELETE"]));

  return router;
}

function notFoundError(id: string): RelaybusError {
  return new RelaybusError(
    "DeadLetterNotFound",
    `dead letter ${JSON.stringify(id)} does not exist`,
  );
}
