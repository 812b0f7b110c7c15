/** Dead letters: `GET /v1/dead-letters` (filters: bus, rule, target, limit, before) and `GET /v1/dead-letters/{id}`. */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { DeadLetterFilter } from "../../log/log-engine.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";

const MAX_PAGE = 1000;

export function createDeadLettersRouter(deps: ControlPlaneDeps): Router {
  const { deliveries } = deps.storage;
  const router = Router();

  router.get("/v1/dead-letters", (req, res) => {
    const query = req.query as Record<string, string | undefined>;
    const filter: DeadLetterFilter = { limit: parseLimit(query.limit, 100) };
    if (query.bus !== undefined) filter.bus = query.bus;
    if (query.rule !== undefined) filter.rule = query.rule;
    if (query.target !== undefined) filter.targetId = query.target;
    if (query.before !== undefined) filter.beforeMs = parseInteger(query.before, "before");
    res.json({ deadLetters: deliveries.listDeadLetters(filter) });
  });

  router.get("/v1/dead-letters/:id", (req, res) => {
    const found = deliveries.getDeadLetter(req.params.id);
    if (found === undefined) {
      throw new RelaybusError("DeadLetterNotFound", `dead letter ${JSON.stringify(req.params.id)} does not exist`);
    }
    res.json(found);
  });

  return router;
}

/** Parses a `limit` query parameter between 1 and 1,000. */
export function parseLimit(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = parseInteger(text, "limit");
  if (value < 1 || value > MAX_PAGE) {
    throw new RelaybusError("ValidationError", `limit: must be between 1 and ${MAX_PAGE}, got ${value}`);
  }
  return value;
}

/** Parses a non-negative integer query parameter, naming it when it is not one. */
export function parseInteger(text: string, name: string): number {
  if (!/^\d{1,15}$/.test(text)) {
    throw new RelaybusError("ValidationError", `${name}: expected a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}
