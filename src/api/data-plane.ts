/**
 * The data plane: the ingest routes, served straight from Node's HTTP server.
 *
 * Express costs more per request than the rest of ingest together (measured on this
 * 2-core machine: a bare Node server answers ~40,000 requests/s, express 5 ~8,000), so the
 * hot routes never pass through it. Everything else falls through to the control plane.
 *
 * Routes:
 * - `POST /v1/events`: PutEvents in AWS's JSON shape.
 * - `POST /` with `X-Amz-Target: AWSEvents.PutEvents`: the same on AWS's JSON protocol, so the
 *   official AWS SDK publishes to Relaybus given it as `endpoint`.
 * - `POST /v1/buses/{bus}/cloudevents`: CloudEvents 1.0, binary, structured or batch mode.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RelaybusConfig } from "../config/defaults.js";
import { RelaybusError, toRelaybusError } from "../errors.js";
import type { Ingest } from "../events/ingest.js";
import type { Logger } from "../types.js";
import { sendError, sendJson } from "./http-errors.js";
import { readBody } from "./read-body.js";

const BUS_PREFIX = "/v1/buses/";
const CLOUDEVENTS_SUFFIX = "/cloudevents";
const AWS_JSON = "application/x-amz-json-1.1";
const PUT_EVENTS_TARGET = "AWSEvents.PutEvents";

/** Handles a request if it is a data-plane route; returns false to let the control plane have it. */
export type DataPlaneHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function createDataPlaneHandler(deps: {
  ingest: Ingest;
  limits: RelaybusConfig["limits"];
  logger: Logger;
}): DataPlaneHandler {
  const { ingest, limits, logger } = deps;

  const putEvents = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      assertJsonContentType(req);
      const body = await readBody(req, limits.maxRequestBytes);
      const result = await ingest.putEvents(body);
      sendJson(res, 200, JSON.stringify(result));
    } catch (error) {
      sendError(res, error, randomUUID(), logger);
    }
  };

  const awsPutEvents = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    try {
      const target = req.headers["x-amz-target"];
      if (target !== PUT_EVENTS_TARGET) {
        throw new RelaybusError(
          "ValidationError",
          `X-Amz-Target: operation ${JSON.stringify(target)} is not supported; Relaybus serves ${PUT_EVENTS_TARGET}`,
        );
      }
      const body = await readBody(req, limits.maxRequestBytes);
      const result = await ingest.putEvents(body);
      sendJson(res, 200, JSON.stringify(result), { "x-amzn-requestid": requestId }, AWS_JSON);
    } catch (thrown) {
      sendAwsError(res, thrown, requestId, logger);
    }
  };

  const cloudEvents = async (req: IncomingMessage, res: ServerResponse, bus: string) => {
    try {
      const body = await readBody(req, limits.maxRequestBytes);
      const result = await ingest.putCloudEvents(bus, req.headers, body);
      sendJson(res, 200, JSON.stringify(result));
    } catch (error) {
      sendError(res, error, randomUUID(), logger);
    }
  };

  return (req, res) => {
    if (req.method !== "POST") return false;
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (path === "/v1/events") {
      void putEvents(req, res);
      return true;
    }
    if (path === "/" && req.headers["x-amz-target"] !== undefined) {
      void awsPutEvents(req, res);
      return true;
    }
    if (path.startsWith(BUS_PREFIX) && path.endsWith(CLOUDEVENTS_SUFFIX)) {
      const encoded = path.slice(BUS_PREFIX.length, path.length - CLOUDEVENTS_SUFFIX.length);
      if (encoded.length > 0 && !encoded.includes("/")) {
        void cloudEvents(req, res, safeDecode(encoded));
        return true;
      }
    }
    return false;
  };
}

function assertJsonContentType(req: IncomingMessage): void {
  const type = req.headers["content-type"];
  if (type === undefined || type.startsWith("application/json") || type.startsWith(AWS_JSON)) return;
  throw new RelaybusError(
    "UnsupportedMediaType",
    `content-type: PutEvents takes application/json, got ${JSON.stringify(type)}`,
  );
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** AWS's JSON protocol error shape: `{"__type": code, "message": ...}`, which the SDKs parse. */
function sendAwsError(res: ServerResponse, thrown: unknown, requestId: string, logger: Logger): void {
  const error = toRelaybusError(thrown);
  if (error.code === "InternalError") logger.error("request failed", { requestId, error: String(thrown) });
  const message = error.code === "InternalError" ? "internal error" : error.message;
  sendJson(
    res,
    error.status,
    JSON.stringify({ __type: error.code, message }),
    { "x-amzn-requestid": requestId, "x-amzn-errortype": error.code },
    AWS_JSON,
  );
}
