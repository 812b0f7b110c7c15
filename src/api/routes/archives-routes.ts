/**
 * Archives: the events of a bus that match a pattern, kept for a retention of their own.
 *
 * - `POST /v1/archives`: `{"name", "bus", "pattern"?, "retentionDays"?, "description"?}`;
 *   it archives from the bus's current end on (no backfill, as EventBridge's archives).
 * - `GET /v1/archives`, `GET /v1/archives/{name}`: with their event count and size.
 * - `DELETE /v1/archives/{name}`: gone at once; its events are removed in the background.
 *
 * The pattern is checked as a rule's is (bus vocabulary: `detail-type`/`detail` mean
 * `type`/`data`), by the same code, and the archiver matches with the same compiler.
 */
import { Router } from "express";
import type { RelaybusConfig } from "../../config/defaults.js";
import { RelaybusError } from "../../errors.js";
import type { ArchiveDefinition, StoredArchive } from "../../log/archive-store.js";
import { compileEventPattern } from "../../patterns/compile-pattern.js";
import { compileBusPattern, problemsToError } from "../../rules/compile-rule.js";
import { NAME_PATTERN } from "../../rules/model.js";
import type { PointerProblem } from "../../rules/rule-problem.js";
import type { CloudEvent, JsonObject } from "../../types.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

/** The most archives the service holds: each one reads its bus's log on every append. */
export const MAX_ARCHIVES = 100;
/** The longest retention that is not "forever" (0): 100 years. */
export const MAX_RETENTION_DAYS = 36_500;

/** An archive as the API shows it. */
export interface ArchiveView {
  name: string;
  bus: string;
  description?: string;
  pattern?: JsonObject;
  retentionDays: number;
  state: "enabled";
  /** The offset of the bus's log the archive has passed. */
  archivedThroughOffset: number;
  eventCount: number;
  sizeBytes: number;
  createdAtMs: number;
}

const parseCreateArchive = compileBodyValidator<ArchiveDefinition>({
  type: "object",
  additionalProperties: false,
  required: ["name", "bus"],
  properties: {
    name: { type: "string", pattern: NAME_PATTERN.source },
    bus: { type: "string", pattern: NAME_PATTERN.source },
    description: { type: "string", maxLength: 512 },
    pattern: { type: "object" },
    retentionDays: { type: "integer", minimum: 0, maximum: MAX_RETENTION_DAYS },
  },
});

/**
 * An archive pattern as a test of an event: checked and put in bus vocabulary as a rule's
 * pattern is, then compiled. Throws `InvalidEventPattern` naming the part (`/pattern/...`).
 * The service gives it to the archiver, which matches with it.
 */
export function compileArchivePattern(
  pattern: JsonObject,
  config: Pick<RelaybusConfig, "limits" | "delivery">,
): (event: CloudEvent) => boolean {
  const problems: PointerProblem[] = [];
  const checked = compileBusPattern(pattern, config, problems);
  if (checked === undefined) throw problemsToError(problems);
  const compiled = compileEventPattern(checked);
  return (event) => compiled.matches(event);
}

export function createArchivesRouter(deps: ControlPlaneDeps): Router {
  const { registry, config, archiver } = deps;
  const { archives, log } = deps.storage;
  const router = Router();

  router
    .route("/v1/archives")
    .get((_req, res) => {
      res.json({ archives: archives.list().map(toView) });
    })
    .post(async (req, res) => {
      const body = parseCreateArchive(req.body);
      registry.assertBusExists(body.bus);
      if (body.pattern !== undefined) compileArchivePattern(body.pattern, config);
      if (archives.list().length >= MAX_ARCHIVES) {
        throw new RelaybusError(
          "ValidationError",
          `name: at most ${MAX_ARCHIVES} archives; delete one first`,
          {
            details: { limit: MAX_ARCHIVES },
          },
        );
      }
      const definition: ArchiveDefinition = {
        name: body.name,
        bus: body.bus,
        ...(body.description === undefined ? {} : { description: body.description }),
        ...(body.pattern === undefined ? {} : { pattern: body.pattern }),
        retentionDays: body.retentionDays ?? 0,
      };
      // From the bus's end now: what came before is in the log, for a replay from the log.
      const created = archives.create(definition, await log.lastOffset(body.bus), Date.now());
      archiver.refresh();
      deps.logger.info("archive created", { archive: created.name, bus: created.bus });
      deps.audit.record(req, { action: "archive.create", resource: `archives/${created.name}`, after: toView(created) });
      res.status(201).json(toView(created));
    })
    .all(methodNotAllowed(["GET", "POST"]));

  router
    .route("/v1/archives/:name")
    .get((req, res) => {
      res.json(toView(findArchive(deps, req.params.name)));
    })
    .delete((req, res) => {
      const previous = archives.get(req.params.name);
      if (!archives.delete(req.params.name)) throw notFound(req.params.name);
      archiver.refresh();
      deps.logger.info("archive deleted", { archive: req.params.name });
      deps.audit.record(req, {
        action: "archive.delete",
        resource: `archives/${req.params.name}`,
        before: previous === undefined ? undefined : toView(previous),
      });
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "DELETE"]));

  return router;
}

function findArchive(deps: ControlPlaneDeps, name: string): StoredArchive {
  const found = deps.storage.archives.get(name);
  if (found === undefined) throw notFound(name);
  return found;
}

function notFound(name: string): RelaybusError {
  return new RelaybusError("ArchiveNotFound", `archive "${name}" does not exist`, {
    details: { archive: name },
  });
}

function toView(a: StoredArchive): ArchiveView {
  return {
    name: a.name,
    bus: a.bus,
    ...(a.description === undefined ? {} : { description: a.description }),
    ...(a.pattern === undefined ? {} : { pattern: a.pattern }),
    retentionDays: a.retentionDays,
    state: "enabled",
    archivedThroughOffset: a.throughOffset,
    eventCount: a.eventCount,
    sizeBytes: a.sizeBytes,
    createdAtMs: a.createdAtMs,
  };
}
