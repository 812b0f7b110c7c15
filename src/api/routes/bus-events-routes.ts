/**
 * Reading a bus's log: `GET /v1/buses/{bus}/events?after=OFFSET&limit=N` pages through the
 * events in offset order; `GET /v1/buses/{bus}/events/{id}` finds one by its CloudEvent id.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { StoredEvent } from "../../types.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { parseInteger, parseLimit } from "./dead-letters-routes.js";

export function createBusEventsRouter(deps: ControlPlaneDeps): Router {
  const { registry, storage } = deps;
  const router = Router();

  router.get("/v1/buses/:bus/events", async (req, res) => {
    const bus = req.params.bus;
    if (!registry.busExists(bus)) throw new RelaybusError("BusNotFound", `bus ${JSON.stringify(bus)} does not exist`);
    const query = req.query as Record<string, string | undefined>;
    const after = query.after === undefined ? 0 : parseInteger(query.after, "after");
    const limit = parseLimit(query.limit, 100);
    const events = await storage.log.read(bus, after, limit);
    const last = events.at(-1);
    res.json({
      events: events.map(describeStoredEvent),
      nextAfter: last === undefined ? after : last.offset,
    });
  });

  router.get("/v1/buses/:bus/events/:id", async (req, res) => {
    const found = await storage.log.findById(req.params.bus, req.params.id);
    if (found === undefined) {
      throw new RelaybusError("EventNotFound", `event ${JSON.stringify(req.params.id)} is not in the log of bus ${JSON.stringify(req.params.bus)}`);
    }
    res.json(describeStoredEvent(found));
  });

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
