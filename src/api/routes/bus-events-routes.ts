/**
 * Reading a bus's log: `GET /v1/buses/{bus}/events?after=OFFSET&limit=N` pages through the
 * events in offset order; `GET /v1/buses/{bus}/events/{id}` finds one by its CloudEvent id.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { StoredEvent } from "../../types.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { integerParam, limitParam, methodNotAllowed } from "../request-params.js";

export function createBusEventsRouter(deps: ControlPlaneDeps): Router {
  const { registry, storage } = deps;
  const router = Router();

  const requireBus = (bus: string) => registry.assertBusExists(bus);

  router
    .route("/v1/buses/:bus/events")
    .get(async (req, res) => {
      const bus = req.params.bus;
      requireBus(bus);
      const after = integerParam(req, "after", 0);
      const events = await storage.log.read(bus, after, limitParam(req, 100));
      const last = events.at(-1);
      res.json({
        events: events.map(describeStoredEvent),
        nextAfter: last === undefined ? after : last.offset,
      });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route("/v1/buses/:bus/events/:id")
    .get(async (req, res) => {
      const { bus, id } = req.params;
      requireBus(bus);
      const found = await storage.log.findById(bus, id);
      if (found === undefined) {
        throw new RelaybusError("EventNotFound", `event ${JSON.stringify(id)} is not in the log of bus ${JSON.stringify(bus)}`);
      }
      res.json(describeStoredEvent(found));
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}

function describeStoredEvent(stored: StoredEvent) {
  return {
    offset: stored.offset,
    receivedAt: new Date(stored.receivedAtMs).toISOString(),
    sizeBytes: stored.sizeBytes,
    units: stored.units,
    event: stored.event,
  };
}
