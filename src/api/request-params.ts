/**
 * Reading query parameters and answering unsupported methods, the same way on every route.
 * Query values arrive as strings, or as arrays when a parameter is repeated; a repeated
 * parameter is a client error here, never something passed on to storage.
 */
import type { Request, RequestHandler } from "express";
import { RelaybusError } from "../errors.js";

const MAX_PAGE = 1000;

/** The single value of query parameter `name`, or undefined; a repeated parameter is a ValidationError. */
export function queryParam(req: Request, name: string): string | undefined {
  const value: unknown = (req.query as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new RelaybusError("ValidationError", `${name}: give this query parameter at most once`);
  }
  return value;
}

/** Parses a `limit` query parameter between 1 and 1,000. */
export function limitParam(req: Request, fallback: number): number {
  const text = queryParam(req, "limit");
  if (text === undefined) return fallback;
  const value = parseNonNegativeInteger(text, "limit");
  if (value < 1 || value > MAX_PAGE) {
    throw new RelaybusError("ValidationError", `limit: must be between 1 and ${MAX_PAGE}, got ${value}`);
  }
  return value;
}

/** A non-negative integer query parameter, or `fallback` when absent. */
export function integerParam(req: Request, name: string, fallback: number): number {
  const text = queryParam(req, name);
  return text === undefined ? fallback : parseNonNegativeInteger(text, name);
}

/** A boolean query parameter (`true` or `false`), or `fallback` when absent. */
export function booleanParam(req: Request, name: string, fallback: boolean): boolean {
  const text = queryParam(req, name);
  if (text === undefined) return fallback;
  if (text === "true") return true;
  if (text === "false") return false;
  throw new RelaybusError("ValidationError", `${name}: expected true or false, got ${JSON.stringify(text)}`);
}

function parseNonNegativeInteger(text: string, name: string): number {
  if (!/^\d{1,15}$/.test(text)) {
    throw new RelaybusError("ValidationError", `${name}: expected a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Ends a `router.route(path)` chain: any other method on a known path is a 405. */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const allow = allowed.join(", ");
  return (req, res, next) => {
    res.setHeader("allow", allow);
    next(new RelaybusError("MethodNotAllowed", `${req.method} is not allowed on ${req.path}; allowed: ${allow}`));
  };
}

/** The request's JSON body, required to be an object; the message says what came instead. */
export function objectBody(req: Request): Record<string, unknown> {
  const body: unknown = req.body;
  if (body === undefined) throw new RelaybusError("ValidationError", "body: a JSON object is required");
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    const got = body === null ? "null" : Array.isArray(body) ? "an array" : typeof body;
    throw new RelaybusError("ValidationError", `body: must be a JSON object, got ${got}`);
  }
  return body as Record<string, unknown>;
}
