/**
 * How errors leave the service over HTTP: one body shape for the REST routes, AWS's shape for
 * the AWS JSON protocol route. Statuses come from the one table in src/errors.ts.
 */
import type { ServerResponse } from "node:http";
import { toRelaybusError, type RelaybusError } from "../errors.js";
import type { Logger } from "../types.js";

/** The REST error body: `{"error": {"code", "message", "details", "requestId"}}`. */
export function errorBody(error: RelaybusError, requestId: string): string {
  return JSON.stringify({
    error: {
      code: error.code,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
      requestId,
    },
  });
}

/**
 * Answers `res` with the error. Unknown errors become `InternalError` and are logged (their
 * text may hold internals, so the client gets only a generic message and the request id).
 */
export function sendError(res: ServerResponse, thrown: unknown, requestId: string, logger: Logger): void {
  const error = toRelaybusError(thrown);
  if (error.code === "InternalError") {
    logger.error("request failed", { requestId, error: String((thrown as Error)?.stack ?? thrown) });
  }
  const safe =
    error.code === "InternalError"
      ? ({ ...error, code: error.code, message: "internal error", details: undefined } as RelaybusError)
      : error;
  sendJson(res, error.status, errorBody(safe, requestId), {
    ...(error.code === "ServiceUnavailable" ? { "retry-after": "1" } : {}),
  });
}

/** Writes a JSON answer unless headers were already sent. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
  contentType = "application/json",
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}
