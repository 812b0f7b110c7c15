/**
 * The control plane: an express app for everything but ingest (buses, rules, pattern tests,
 * dead letters, reading the log). It never listens itself; the server hands it the requests
 * the data plane did not take.
 */
import { randomUUID } from "node:crypto";
import express, { type ErrorRequestHandler, type RequestHandler } from "express";
import { RelaybusError } from "../errors.js";
import { parseJsonBody } from "../events/json-body.js";
import { sendError } from "./http-errors.js";
import type { ControlPlaneDeps } from "./control-plane-deps.js";
import { createSchedulesRouter } from "./routes/schedules-routes.js";
import { createStreamsRouter } from "./routes/streams-routes.js";
import { createArchivesRouter } from "./routes/archives-routes.js";
import { createAuditRouter } from "./routes/audit-routes.js";
import { createBillingRouter } from "./routes/billing-routes.js";
import { createBusEventsRouter } from "./routes/bus-events-routes.js";
import { createBusesRouter } from "./routes/buses-routes.js";
import { createConnectionsRouter } from "./routes/connections-routes.js";
import { createDeadLettersRouter } from "./routes/dead-letters-routes.js";
import { createEventTraceRouter } from "./routes/event-trace-routes.js";
import { createHealthRouter } from "./routes/health-routes.js";
import { createKeysRouter } from "./routes/keys-routes.js";
import { createPatternsRouter } from "./routes/patterns-routes.js";
import { createReplaysRouter } from "./routes/replays-routes.js";
import { createRulesDryRunRouter } from "./routes/rules-dry-run-routes.js";
import { createRulesRouter } from "./routes/rules-routes.js";
import { createTargetSecretsRouter } from "./routes/target-secrets-routes.js";
import { createTargetStatusRouter } from "./routes/target-status-routes.js";
import { createUsageRouter } from "./routes/usage-routes.js";

export type { ControlPlaneDeps } from "./control-plane-deps.js";

export function createControlPlaneApp(deps: ControlPlaneDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  // Before the body is read: a request without the right key costs no body parsing.
  app.use(deps.auth.middleware());
  app.use(express.raw({ type: () => true, limit: deps.config.limits.maxRequestBytes }));
  app.use(parseJson(deps));

  app.use(createHealthRouter(deps));
  app.use(createBusesRouter(deps));
  // Before the rules router, whose `{name}` would otherwise take `name:dry-run` whole.
  app.use(createRulesDryRunRouter(deps));
  app.use(createRulesRouter(deps));
  app.use(createTargetSecretsRouter(deps));
  app.use(createTargetStatusRouter(deps));
  app.use(createConnectionsRouter(deps));
  app.use(createPatternsRouter(deps));
  app.use(createDeadLettersRouter(deps));
  app.use(createArchivesRouter(deps));
  app.use(createReplaysRouter(deps));
  app.use(createBillingRouter(deps));
  app.use(createUsageRouter(deps));
  app.use(createEventTraceRouter(deps));
  app.use(createBusEventsRouter(deps));
  app.use(createKeysRouter(deps));
  app.use(createAuditRouter(deps));
  app.use(createStreamsRouter(deps));
  app.use(createSchedulesRouter(deps));

  app.use((req, _res, next) => {
    next(new RelaybusError("RouteNotFound", `no route for ${req.method} ${req.path}`));
  });
  app.use(errorHandler(deps));
  return app;
}

/** Parses JSON bodies with the same depth and key limits as ingest; an empty body is `undefined`. */
function parseJson(deps: ControlPlaneDeps): RequestHandler {
  return (req, _res, next) => {
    const raw: unknown = req.body;
    if (!Buffer.isBuffer(raw) || raw.length === 0) {
      req.body = undefined;
      next();
      return;
    }
    const type = req.headers["content-type"] ?? "application/json";
    if (!/^application\/([a-z.+-]*\+)?json\b/.test(type)) {
      next(new RelaybusError("UnsupportedMediaType", `content-type: expected application/json, got ${JSON.stringify(type)}`));
      return;
    }
    try {
      req.body = parseJsonBody(raw, deps.config.limits);
      next();
    } catch (error) {
      next(error);
    }
  };
}

function errorHandler(deps: ControlPlaneDeps): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    const mapped = mapExpressError(error, deps);
    sendError(res, mapped, randomUUID(), deps.logger);
  };
}

/** Errors express raises itself, mapped to our codes: an oversized body, a malformed path. */
function mapExpressError(error: unknown, deps: ControlPlaneDeps): unknown {
  // express.raw reports an oversized body with type "entity.too.large".
  if ((error as { type?: string })?.type === "entity.too.large") {
    return new RelaybusError(
      "PayloadTooLarge",
      `request body is over the limit of ${deps.config.limits.maxRequestBytes} bytes (limits.maxRequestBytes)`,
    );
  }
  // The router fails to decode a path parameter with bad percent-encoding.
  if (error instanceof URIError) {
    return new RelaybusError("ValidationError", `path: malformed percent-encoding (${error.message})`);
  }
  return error;
}
