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
 *
 * A request with `relaybus-include-units: true` is also told each stored event's billable
 * 64 KB units: `Units` in PutEvents entries, `units` in CloudEvents batch results, and the
 * `relaybus-units` response header for one CloudEvent. Without it the answers are unchanged.
 *
 * API keys (src/api/auth-guard.ts): the REST routes take `Authorization: Bearer rb_...` or
 * `x-api-key`, the AWS route a SigV4 signature; each event's bus must be one the key may
 * publish to. A CloudEvents request to another bus, or a PutEvents request none of whose
 * entries may go where they name, is 403; a PutEvents mix stores the allowed entries and
 * answers `Forbidden` in the place of the others, as AWS answers per entry.
 *
 * Publish rate limits (src/api/publish-rate-limit.ts): per bus and per API key, counted per
 * event. A refused event is answered `RateLimited` in its place; a request refused whole is
 * 429 `RateLimited` with `Retry-After` (on the AWS route `ThrottlingException`).
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RelaybusConfig } from "../config/defaults.js";
import { RelaybusError, isRelaybusError, toRelaybusError } from "../errors.js";
import type { Ingest, IngestOptions } from "../events/ingest.js";
import { systemClock, type Clock, type Logger } from "../types.js";
import { assertNotAllForbidden, awsErrorTypeOf, type AuthGuard } from "./auth-guard.js";
import type { Principal } from "./auth-keys.js";
import { sendError, sendJson } from "./http-errors.js";
import { createPublishRateLimits } from "./publish-rate-limit.js";
import { readBody } from "./read-body.js";

const BUS_PREFIX = "/v1/buses/";
const CLOUDEVENTS_SUFFIX = "/cloudevents";
const AWS_JSON = "application/x-amz-json-1.1";
const PUT_EVENTS_TARGET = "AWSEvents.PutEvents";
/** The request header that asks for units in the answer (`true` or `false`). */
export const INCLUDE_UNITS_HEADER = "relaybus-include-units";
/** The response header that carries one CloudEvent's units (with {@link INCLUDE_UNITS_HEADER}). */
export const UNITS_HEADER = "relaybus-units";

/** Handles a request if it is a data-plane route; returns false to let the control plane have it. */
export type DataPlaneHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function createDataPlaneHandler(deps: {
  /** The ingest a request's key may use: restricted to the buses it may publish to. */
  ingestFor: (principal: Principal | undefined) => Ingest;
  auth: AuthGuard;
  limits: RelaybusConfig["limits"];
  logger: Logger;
  /** The clock of the publish rate limits. Default: the wall clock. */
  clock?: Clock;
}): DataPlaneHandler {
  const { ingestFor, auth, limits, logger } = deps;
  const rateLimits = createPublishRateLimits({ ratePerBus: limits.publishRatePerBus, clock: deps.clock ?? systemClock });
  /** The request's options with its rate limits, if any apply (none: no per-event work). */
  const optionsFor = (req: IncomingMessage, principal: Principal | undefined): IngestOptions => {
    const options = ingestOptions(req);
    const admit = rateLimits.admissionFor(principal);
    return admit === undefined ? options : { ...options, admit };
  };

  const putEvents = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const principal = auth.authorizeRest(req, "publish", "/v1/events");
      assertJsonContentType(req);
      const options = optionsFor(req, principal);
      const body = await readBody(req, limits.maxRequestBytes);
      const result = await ingestFor(principal).putEvents(body, options);
      assertNotAllForbidden(result);
      sendJson(res, 200, JSON.stringify(result));
    } catch (error) {
      setRetryAfter(res, error);
      sendError(res, error, randomUUID(), logger);
    }
  };

  const awsPutEvents = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    try {
      // SigV4 covers the body, so it is read before the signature is checked.
      const body = await readBody(req, limits.maxRequestBytes);
      const principal = auth.authorizeSigV4(req, body);
      const target = req.headers["x-amz-target"];
      if (target !== PUT_EVENTS_TARGET) {
        throw new RelaybusError(
          "ValidationError",
          `X-Amz-Target: operation ${JSON.stringify(target)} is not supported; Relaybus serves ${PUT_EVENTS_TARGET}`,
        );
      }
      const options = optionsFor(req, principal);
      const result = await ingestFor(principal).putEvents(body, options);
      assertNotAllForbidden(result);
      sendJson(res, 200, JSON.stringify(result), { "x-amzn-requestid": requestId }, AWS_JSON);
    } catch (thrown) {
      setRetryAfter(res, thrown);
      sendAwsError(res, throttlingOnAws(thrown), requestId, logger);
    }
  };

  const cloudEvents = async (req: IncomingMessage, res: ServerResponse, bus: string) => {
    try {
      const principal = auth.authorizeRest(req, "publish", "/v1/buses/{bus}/cloudevents");
      auth.assertMayPublish(principal, bus);
      const options = optionsFor(req, principal);
      const body = await readBody(req, limits.maxRequestBytes);
      const result = await ingestFor(principal).putCloudEvents(bus, req.headers, body, options);
      if ("id" in result && result.units !== undefined) {
        // One event: its body stays `{id}` as ever; the units travel in a header.
        sendJson(res, 200, JSON.stringify({ id: result.id }), { [UNITS_HEADER]: String(result.units) });
        return;
      }
      sendJson(res, 200, JSON.stringify(result));
    } catch (error) {
      setRetryAfter(res, error);
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

/** The request's {@link INCLUDE_UNITS_HEADER}: `true` or `false` (any case), absent is false. */
function ingestOptions(req: IncomingMessage): IngestOptions {
  const value = req.headers[INCLUDE_UNITS_HEADER];
  if (value === undefined) return {};
  const text = Array.isArray(value) ? value.join(",") : value;
  const flag = text.trim().toLowerCase();
  if (flag === "true") return { includeUnits: true };
  if (flag === "false") return {};
  throw new RelaybusError(
    "ValidationError",
    `${INCLUDE_UNITS_HEADER}: expected true or false, got ${JSON.stringify(text)}`,
    { details: { field: INCLUDE_UNITS_HEADER } },
  );
}

/** `Retry-After` (whole seconds) on a `RateLimited` answer, from `details.retryAfterSeconds`. */
function setRetryAfter(res: ServerResponse, thrown: unknown): void {
  if (!isRelaybusError(thrown, "RateLimited") || res.headersSent) return;
  const seconds = thrown.details?.retryAfterSeconds;
  if (typeof seconds === "number") res.setHeader("retry-after", String(seconds));
}

/** A `RateLimited` error named as AWS names it on its protocol (`ThrottlingException`), so SDKs retry it. */
function throttlingOnAws(thrown: unknown): unknown {
  if (!isRelaybusError(thrown, "RateLimited")) return thrown;
  return new RelaybusError("RateLimited", thrown.message, {
    details: { ...thrown.details, awsErrorType: "ThrottlingException" },
  });
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
  const type = awsErrorTypeOf(error);
  sendJson(
    res,
    error.status,
    JSON.stringify({ __type: type, message }),
    { "x-amzn-requestid": requestId, "x-amzn-errortype": type },
    AWS_JSON,
  );
}
