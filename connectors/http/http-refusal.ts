/**
 * How the HTTP source refuses a request: a status and an error body of the same shape as
 * Relaybus's own API (`{"error": {"code", "message"}}`, the same codes), so a producer that
 * already handles Relaybus's answers handles these.
 */
import type { ServerResponse } from "node:http";

/** The codes this endpoint answers with, and their statuses. */
export const REFUSAL_STATUS = {
  InvalidJson: 400,
  ValidationError: 400,
  Unauthorized: 401,
  RouteNotFound: 404,
  MethodNotAllowed: 405,
  PayloadTooLarge: 413,
  ServiceUnavailable: 503,
} as const;
export type RefusalCode = keyof typeof REFUSAL_STATUS;

/** A request the endpoint refuses; thrown while reading and parsing, answered once. */
export class HttpRefusal extends Error {
  readonly code: RefusalCode;
  constructor(code: RefusalCode, message: string) {
    super(message);
    this.name = "HttpRefusal";
    this.code = code;
  }
  get status(): number {
    return REFUSAL_STATUS[this.code];
  }
}

/** Answers `status` with a JSON body, unless an answer went out already. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
  });
  res.end(text);
}

/** Answers a refusal; 503s say when to try again, 401s which scheme to use. */
export function sendRefusal(
  res: ServerResponse,
  refusal: HttpRefusal,
  headers: Record<string, string> = {},
): void {
  const extra: Record<string, string> = { ...headers };
  if (refusal.code === "ServiceUnavailable") extra["retry-after"] = "1";
  if (refusal.code === "Unauthorized") extra["www-authenticate"] = "Bearer";
  if (refusal.code === "MethodNotAllowed") extra["allow"] = "POST";
  sendJson(res, refusal.status, { error: { code: refusal.code, message: refusal.message } }, extra);
}
