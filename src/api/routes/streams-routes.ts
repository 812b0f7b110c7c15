/**
 * Event streams and the connectors they are built from.
 *
 * - `GET /v1/connectors`: every source and sink connector, with its config schema.
 * - `GET /v1/streams`, `POST /v1/streams` (create, 201): streams from rule files and the API.
 * - `GET|PUT|DELETE /v1/streams/{name}`: one stream with its state, counters, capacity and
 *   live figures; `PUT` replaces an API stream (it restarts from its saved position).
 *   Streams from rule files are changed in the files (`StreamManagedByFile`).
 * - `POST /v1/streams/{name}:pause`, `:resume` (also starts a failed stream again),
 *   `:start` (the same as resume, for a stream created paused).
 * - `GET /v1/streams/{name}/capacity`: the CU changes, newest first, with why.
 * - `GET /v1/streams/{name}/dead-letters`: events the sink refused or that ran out of retries.
 * - `POST /v1/streams/{name}/dead-letters:redrive` (`{"ids": [...]}` or `{"all": true}`): send
 *   them again through the running stream; `:purge` deletes them.
 */
import { Router, type Request, type Response } from "express";
import { CONNECTORS } from "../../../connectors/index.js";
import { RelaybusError } from "../../errors.js";
import { MAX_REDRIVE, type StreamView } from "../../streams/stream-manager.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { redactConnectorConfigs } from "../redact-secrets.js";
import { integerParam, limitParam, methodNotAllowed, objectBody } from "../request-params.js";

/** A stream as answered: its connectors' credentials shown as "***". */
function shown(view: StreamView): StreamView {
  return { ...view, definition: redactConnectorConfigs(view.definition) };
}

export function createStreamsRouter(deps: ControlPlaneDeps): Router {
  const router = Router();
  const { streams } = deps;

  router
    .route("/v1/connectors")
    .get((_req, res) => {
      res.json({
        connectors: CONNECTORS.map((c) => ({ name: c.name, kind: c.kind, description: c.description, configSchema: c.configSchema })),
      });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route("/v1/streams")
    .get((_req, res) => {
      res.json({ streams: streams.list().map(shown) });
    })
    .post(async (req, res) => {
      const after = shown(await streams.put(objectBody(req), "create"));
      deps.audit.record(req, { action: "stream.create", resource: `streams/${after.name}`, after: after.definition });
      res.status(201).json(after);
    })
    .all(methodNotAllowed(["GET", "POST"]));

  const action = (verb: "pause" | "resume") => async (req: Request<{ name: string }>, res: Response) => {
    const { name } = req.params;
    const before = streams.get(name);
    const after = shown(await streams[verb](name));
    // A change that changes nothing leaves no entry (as for rules).
    if (before.desired !== after.desired || before.state !== after.state) {
      deps.audit.record(req, {
        action: `stream.${verb}`,
        resource: `streams/${name}`,
        before: { desired: before.desired, state: before.state },
        after: { desired: after.desired, state: after.state },
      });
    }
    res.json(after);
  };
  router.route("/v1/streams/:name\\:pause").post(action("pause")).all(methodNotAllowed(["POST"]));
  router.route("/v1/streams/:name\\:resume").post(action("resume")).all(methodNotAllowed(["POST"]));
  router.route("/v1/streams/:name\\:start").post(action("resume")).all(methodNotAllowed(["POST"]));

  router
    .route("/v1/streams/:name/capacity")
    .get((req, res) => {
      const { name } = req.params;
      const view = streams.get(name);
      res.json({ stream: name, currentCU: view.capacity.currentCU, changes: streams.capacityHistory(name, limitParam(req, 100)) });
    })
    .all(methodNotAllowed(["GET"]));

  /** `{"ids": [1, 2]}` or `{"all": true}`, checked. */
  const selectionOf = (req: Request): { ids: number[] } | { all: true } => {
    const body = objectBody(req);
    const { ids, all } = body;
    const keys = Object.keys(body);
    if (all === true && keys.length === 1) return { all: true };
    if (Array.isArray(ids) && keys.length === 1 && ids.length > 0 && ids.length <= MAX_REDRIVE && ids.every((id) => Number.isSafeInteger(id) && (id as number) > 0)) {
      return { ids: ids as number[] };
    }
    throw new RelaybusError(
      "ValidationError",
      `body: give {"ids": [...]} (1 to ${MAX_REDRIVE} positive integers) or {"all": true}, and nothing else`,
      { details: { field: "ids" } },
    );
  };

  router
    .route("/v1/streams/:name/dead-letters\\:redrive")
    .post(async (req: Request<{ name: string }>, res) => {
      const { name } = req.params;
      const selection = selectionOf(req);
      const result = await streams.redriveDeadLetters(name, selection);
      deps.audit.record(req, { action: "stream.dead-letters.redrive", resource: `streams/${name}`, before: selection, after: result });
      res.json(result);
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/v1/streams/:name/dead-letters\\:purge")
    .post((req: Request<{ name: string }>, res) => {
      const { name } = req.params;
      const selection = selectionOf(req);
      const purged = streams.purgeDeadLetters(name, selection);
      deps.audit.record(req, { action: "stream.dead-letters.purge", resource: `streams/${name}`, before: selection, after: { purged } });
      res.json({ purged });
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/v1/streams/:name/dead-letters")
    .get((req, res) => {
      const { name } = req.params;
      const limit = limitParam(req, 100);
      const deadLetters = streams.deadLetters(name, integerParam(req, "after", 0), limit);
      const last = deadLetters[deadLetters.length - 1];
      res.json({ deadLetters, ...(deadLetters.length === limit && last !== undefined ? { next: last.id } : {}) });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route("/v1/streams/:name")
    .get((req, res) => {
      res.json(shown(streams.get(req.params.name)));
    })
    .put(async (req, res) => {
      const { name } = req.params;
      const body = objectBody(req);
      const before = shown(streams.get(name));
      const after = shown(await streams.put({ name, ...body }, "replace", name));
      deps.audit.record(req, { action: "stream.replace", resource: `streams/${name}`, before: before.definition, after: after.definition });
      res.json(after);
    })
    .delete(async (req, res) => {
      const { name } = req.params;
      const before = shown(streams.get(name));
      await streams.delete(name);
      deps.audit.record(req, { action: "stream.delete", resource: `streams/${name}`, before: before.definition });
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "PUT", "DELETE"]));

  return router;
}
