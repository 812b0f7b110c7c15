/**
 * `POST /v1/test-event-pattern`: applies a pattern to a JSON event exactly as given (AWS
 * `TestEventPattern` semantics: no renaming of `detail` or `detail-type`). With
 * `"explain": true` the answer also carries the explanation of src/patterns/explain-pattern.ts.
 */
import { Router } from "express";
import { compileEventPattern } from "../../patterns/compile-pattern.js";
import { explainEventPattern } from "../../patterns/explain-pattern.js";
import { parseEventPattern } from "../../patterns/parse-pattern.js";
import { patternLimitsOf } from "../../rules/compile-rule.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

interface TestPatternBody {
  pattern: unknown;
  event: unknown;
  explain?: boolean;
}

const parseTestPattern = compileBodyValidator<TestPatternBody>({
  type: "object",
  additionalProperties: false,
  required: ["pattern", "event"],
  properties: { pattern: {}, event: {}, explain: { type: "boolean" } },
});

export function createPatternsRouter(deps: ControlPlaneDeps): Router {
  const router = Router();
  router.route("/v1/test-event-pattern").post((req, res) => {
    const body = parseTestPattern(req.body);
    // AWS also accepts the pattern and event as JSON strings.
    const pattern = parseEventPattern(decodeIfString(body.pattern), patternLimitsOf(deps.config.limits));
    const event = decodeIfString(body.event);
    const match = compileEventPattern(pattern).matches(event);
    if (body.explain === true) res.json({ match, explanation: explainEventPattern(pattern, event) });
    else res.json({ match });
  }).all(methodNotAllowed(["POST"]));
  return router;
}

function decodeIfString(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}
