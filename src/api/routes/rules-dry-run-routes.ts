/**
 * `POST /v1/buses/{bus}/rules/{name}:dry-run`: runs a rule over the last events of the bus's
 * log and answers which would have matched and what each target would have received, without
 * delivering or storing anything.
 *
 * The rule is the saved one named in the path, or the definition in the body's `rule`,
 * validated and compiled as `PUT` does (bus vocabulary: `detail-type`/`detail` mean
 * `type`/`data`). Payloads are built by the function the dispatcher uses (`buildTargetRequest`:
 * transform, then format), so a payload here is the request the dispatcher would
 * store; a failed transform or format is reported on its target with the reason the
 * dispatcher would dead-letter it with, and a failed transform with its error code
 * (`InvalidTransform`, or `TransformTimeout` past `transform.timeoutMs`).
 *
 * Costs are bounded: the log is read in pages (not all `limit` events at once, which at the
 * largest event size could be gigabytes), and payloads are built only until
 * {@link DRY_RUN_PAYLOAD_BUDGET_BYTES} of bodies or {@link DRY_RUN_TRANSFORM_BUDGET_MS} of
 * transform time are spent; later targets say `omitted`, and the answer counts them.
 */
import { Router } from "express";
import { deliveryId } from "../../delivery/delivery-id.js";
import { buildTargetRequest } from "../../delivery/build-request.js";
import { DEFAULT_FORMAT_OPTIONS } from "../../delivery/format-payload.js";
import type { RoutedTarget } from "../../delivery/router.js";
import { RelaybusError, type ErrorCode } from "../../errors.js";
import { compileRule, type CompiledRule } from "../../rules/compile-rule.js";
import type { StoredEvent } from "../../types.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { redactHeaders } from "../redact-secrets.js";
import { methodNotAllowed } from "../request-params.js";

/** Events scanned when the body gives no `limit`. */
export const DEFAULT_DRY_RUN_EVENTS = 100;
/** The most events one dry run scans (`limit`). */
export const MAX_DRY_RUN_EVENTS = 10_000;
/** Payload bodies, in UTF-8 bytes, one answer carries at most; later targets are `omitted`. */
export const DRY_RUN_PAYLOAD_BUDGET_BYTES = 4 * 1024 * 1024;
/** Transform time one dry run spends at most, in ms; later targets are `omitted`. */
export const DRY_RUN_TRANSFORM_BUDGET_MS = 5_000;
/**
 * The route; `\\:` is a literal colon (express 5). Typed as a plain string because express's
 * type-level path parser does not know that escape (it would name a param `name\\:dry`).
 */
const DRY_RUN_PATH: string = "/v1/buses/:bus/rules/:name\\:dry-run";

/** Events read from the log per page. */
const PAGE_EVENTS = 500;

/** What one target would have received for one event. */
type TargetPreview = { targetId: string; format: string; url: string } & (
  | { outcome: "payload"; headers: Record<string, string>; body: string }
  | { outcome: "error"; error: string; code?: ErrorCode }
  | { outcome: "omitted" }
);

/** One event the rule matched, with what each of its targets would have received. */
interface MatchPreview {
  offset: number;
  id: string;
  source: string;
  type: string;
  time?: string;
  receivedAt: string;
  targets: TargetPreview[];
}

interface DryRunBody {
  rule?: unknown;
  limit: number;
}

export function createRulesDryRunRouter(deps: ControlPlaneDeps): Router {
  const { registry, storage, config } = deps;
  const router = Router();

  router
    .route(DRY_RUN_PATH)
    .post(async (req, res) => {
      // Both are named segments (never wildcard arrays): see DRY_RUN_PATH.
      const { bus, name } = req.params as { bus: string; name: string };
      registry.assertBusExists(bus);
      const body = parseDryRunBody(req.body);
      const rule =
        body.rule === undefined ? savedRule(bus, name) : proposedRule(bus, name, body.rule);

      const budget = {
        bytes: DRY_RUN_PAYLOAD_BUDGET_BYTES,
        transformMs: DRY_RUN_TRANSFORM_BUDGET_MS,
      };
      const nowMs = Date.now();
      let scanned = 0;
      let first: StoredEvent | undefined;
      let last: StoredEvent | undefined;
      let omitted = 0;
      const matches: MatchPreview[] = [];
      for await (const page of lastEvents(bus, body.limit)) {
        for (const stored of page) {
          scanned++;
          first ??= stored;
          last = stored;
          if (!rule.matches(stored.event)) continue;
          const targets: TargetPreview[] = [];
          for (const target of rule.targets) {
            const preview = await previewTarget(bus, rule.name, stored, target, nowMs, budget);
            if (preview.outcome === "omitted") omitted++;
            targets.push(preview);
          }
          const { id, source, type, time } = stored.event;
          matches.push({
            offset: stored.offset,
            id,
            source,
            type,
            ...(time === undefined ? {} : { time }),
            receivedAt: new Date(stored.receivedAtMs).toISOString(),
            targets,
          });
        }
      }

      res.json({
        bus,
        rule: rule.name,
        ruleSource: body.rule === undefined ? "saved" : "request",
        enabled: rule.enabled,
        scanned:
          first === undefined || last === undefined
            ? { events: 0 }
            : {
                events: scanned,
                firstOffset: first.offset,
                lastOffset: last.offset,
                from: new Date(first.receivedAtMs).toISOString(),
                to: new Date(last.receivedAtMs).toISOString(),
              },
        matched: matches.length,
        matches,
        payloadsOmitted: omitted,
      });
    })
    .all(methodNotAllowed(["POST"]));

  /** The saved rule, compiled as the registry compiles it (`RuleNotFound` when there is none). */
  function savedRule(bus: string, name: string): CompiledRule {
    const view = registry.getRule(bus, name);
    return compileRule(bus, view.definition, { config, origin: view.origin });
  }

  /** A definition from the body, checked as `PUT /v1/buses/{bus}/rules/{name}` checks it. */
  function proposedRule(bus: string, name: string, definition: unknown): CompiledRule {
    if (typeof definition !== "object" || definition === null || Array.isArray(definition)) {
      throw new RelaybusError(
        "ValidationError",
        `body.rule: must be a rule definition (a JSON object), got ${describeJson(definition)}`,
      );
    }
    const given = (definition as { name?: unknown }).name;
    if (given !== undefined && given !== name) {
      throw new RelaybusError(
        "ValidationError",
        `body.rule.name: ${JSON.stringify(given)} differs from the rule in the path (${JSON.stringify(name)})`,
      );
    }
    return compileRule(bus, { ...definition, name }, { config, origin: { kind: "api" } });
  }

  /**
   * The last `limit` events of `bus`, oldest first, a page at a time. Offsets are gap-free and
   * retention removes the oldest first, so the last `limit` events are those after
   * `lastOffset - limit`; events appended meanwhile are left out.
   */
  async function* lastEvents(bus: string, limit: number): AsyncGenerator<StoredEvent[]> {
    const end = await storage.log.lastOffset(bus);
    let after = Math.max(0, end - limit);
    while (after < end) {
      const page = (await storage.log.read(bus, after, Math.min(PAGE_EVENTS, end - after))).filter(
        (e) => e.offset <= end,
      );
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1]!.offset;
    }
  }

  /** The request `target` would get for `stored`, as the dispatcher builds it. */
  async function previewTarget(
    bus: string,
    ruleName: string,
    stored: StoredEvent,
    target: RoutedTarget,
    nowMs: number,
    budget: { bytes: number; transformMs: number },
  ): Promise<TargetPreview> {
    const base = { targetId: target.targetId, format: target.format, url: target.url };
    if (budget.bytes <= 0 || budget.transformMs <= 0) return { ...base, outcome: "omitted" };
    const startedMs = Date.now();
    const built = await buildTargetRequest(stored, target, {
      deliveryId: deliveryId(bus, stored.offset, stored.event.id, ruleName, target.targetId),
      nowMs,
      transformTimeoutMs: config.transform.timeoutMs,
      format: DEFAULT_FORMAT_OPTIONS,
    });
    if (target.format === "transform") budget.transformMs -= Date.now() - startedMs;
    if (!built.ok) {
      return { ...base, outcome: "error", error: built.reason, ...(built.code === undefined ? {} : { code: built.code }) };
    }
    budget.bytes -= Buffer.byteLength(built.value.body, "utf8");
    return { ...base, outcome: "payload", headers: redactHeaders(built.value.headers), body: built.value.body };
  }

  return router;
}

/** The body: absent or an object with optional `rule` and `limit`. */
function parseDryRunBody(body: unknown): DryRunBody {
  if (body === undefined) return { limit: DEFAULT_DRY_RUN_EVENTS };
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RelaybusError(
      "ValidationError",
      `body: must be a JSON object, got ${describeJson(body)}`,
    );
  }
  const { rule, limit, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw new RelaybusError(
      "ValidationError",
      `body: unknown field ${JSON.stringify(unknown[0])}; a dry run takes "rule" and "limit"`,
    );
  }
  if (limit === undefined) return { rule, limit: DEFAULT_DRY_RUN_EVENTS };
  if (
    typeof limit !== "number" ||
    !Number.isInteger(limit) ||
    limit < 1 ||
    limit > MAX_DRY_RUN_EVENTS
  ) {
    throw new RelaybusError(
      "ValidationError",
      `body.limit: the number of events to scan must be an integer from 1 to ${MAX_DRY_RUN_EVENTS}, got ${JSON.stringify(limit)}`,
      { details: { field: "limit", max: MAX_DRY_RUN_EVENTS } },
    );
  }
  return { rule, limit };
}

function describeJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

