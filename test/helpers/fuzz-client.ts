/**
 * Sends fuzz requests over keep-alive connections (an undici pool) and judges each answer:
 * no 5xx but a 503 the contract documents for the route, and every error body of the one
 * shape (`{"error": {"code", "message", "requestId"}}`, or AWS's `{"__type", "message"}` on the
 * AWS protocol route) whose code answers with exactly that status.
 */
import { SignatureV4 } from "@smithy/signature-v4";
import { Pool } from "undici";
import { ERROR_STATUS } from "../../src/errors.js";
import type { FuzzRequest } from "./fuzz-inputs.js";
import { loadContract } from "./openapi.js";
import { Sha256 } from "./sigv4-sha256.js";

/** What one request got back. */
export interface FuzzAnswer {
  status: number;
  contentType: string | undefined;
  retryAfter: string | undefined;
  body: string;
}

/** Keep-alive connections to the service, a SigV4 signer for the AWS route. */
export interface FuzzClient {
  send(request: FuzzRequest): Promise<FuzzAnswer>;
  close(): Promise<void>;
}

export function createFuzzClient(options: {
  url: string;
  connections: number;
  credentials: { accessKeyId: string; secretAccessKey: string };
}): FuzzClient {
  const pool = new Pool(options.url, {
    connections: options.connections,
    pipelining: 1,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    keepAliveTimeout: 30_000,
  });
  const signer = new SignatureV4({
    service: "events",
    region: "eu-central-1",
    credentials: options.credentials,
    sha256: Sha256,
  });
  const { host } = new URL(options.url);

  const signed = async (request: FuzzRequest): Promise<Record<string, string>> => {
    const [path, query] = request.path.split("?", 2) as [string, string | undefined];
    const result = await signer.sign({
      method: request.method,
      protocol: "http:",
      hostname: host.split(":")[0] ?? "127.0.0.1",
      port: Number(host.split(":")[1]),
      path,
      query: query === undefined ? {} : Object.fromEntries(new URLSearchParams(query)),
      headers: { ...request.headers, host },
      body: request.body ?? "",
    });
    return result.headers;
  };

  return {
    async send(request) {
      assertSendable(request);
      const headers = request.sign === true ? await signed(request) : request.headers;
      const response = await pool.request({
        method: request.method as "GET",
        path: request.path,
        headers,
        body: request.body,
      });
      const body = await response.body.text();
      const header = (name: string) => {
        const value = response.headers[name];
        return Array.isArray(value) ? value.join(",") : value;
      };
      return {
        status: response.statusCode,
        contentType: header("content-type"),
        retryAfter: header("retry-after"),
        body,
      };
    },
    close: () => pool.close(),
  };
}

/** Thrown for a request the HTTP client would refuse to write; it is never handed to the pool. */
export class UnsendableRequest extends Error {}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\x21-\xff]/;

/**
 * Refuses what undici would refuse (a path not starting with `/`, a header it cannot write)
 * before the pool sees it: undici 7's Pool rejects such a request but keeps its connection
 * slot, and after `connections` of them every later request waits forever.
 */
function assertSendable(request: FuzzRequest): void {
  if (!request.path.startsWith("/") || BAD_PATH.test(request.path))
    throw new UnsendableRequest(`path ${JSON.stringify(request.path.slice(0, 60))}`);
  for (const [name, value] of Object.entries(request.headers)) {
    if (!HEADER_NAME.test(name) || BAD_HEADER_VALUE.test(value))
      throw new UnsendableRequest(`header ${JSON.stringify(name)}`);
  }
}

/** The statuses each route of the contract declares, by `METHOD template`. */
function declaredStatuses(): Map<string, Set<number>> {
  const declared = new Map<string, Set<number>>();
  const paths = loadContract().paths as Record<
    string,
    Record<string, { responses?: Record<string, unknown> }>
  >;
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (typeof operation !== "object" || operation?.responses === undefined) continue;
      declared.set(
        `${method.toUpperCase()} ${path}`,
        new Set(Object.keys(operation.responses).map(Number)),
      );
    }
  }
  return declared;
}

/**
 * Returns why `answer` breaks the rules for `request`, or undefined when it is fine.
 *
 * - No 5xx, except a 503 the contract declares for the route (storage unavailable), which
 *   must carry `Retry-After`.
 * - An answer of 400 or more has a JSON body of the error shape, and its code maps to
 *   exactly that status in src/errors.ts. Node's own HTTP parser answers some requests before
 *   Relaybus sees them (431 for headers past its 16 KB limit) with no body: those are let be.
 */
export function createAnswerJudge(): (
  request: FuzzRequest,
  answer: FuzzAnswer,
) => string | undefined {
  const declared = declaredStatuses();
  const codes = ERROR_STATUS as Record<string, number>;
  return (request, answer) => {
    const { status } = answer;
    if (status >= 500) {
      const statuses =
        request.template === undefined
          ? undefined
          : declared.get(`${request.method} ${request.template}`);
      if (status !== 503 || statuses?.has(503) !== true)
        return `status ${status} (not a documented 503)`;
      if (answer.retryAfter === undefined) return "503 without Retry-After";
    }
    if (status < 400) return undefined;
    if (status === 431 && answer.body === "") return undefined;
    if (request.method === "HEAD") return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      return `status ${status} with a body that is not JSON`;
    }
    if (!(answer.contentType ?? "").includes("json"))
      return `status ${status} with content-type ${answer.contentType}`;
    const isAws =
      request.template === "/" ||
      (request.path === "/" && request.headers["x-amz-target"] !== undefined);
    if (isAws && typeof parsed === "object" && parsed !== null && "__type" in parsed) {
      const aws = parsed as { __type: unknown; message: unknown };
      return typeof aws.__type === "string" && typeof aws.message === "string"
        ? undefined
        : "AWS error body without __type and message";
    }
    const error = (
      parsed as { error?: { code?: unknown; message?: unknown; requestId?: unknown } } | null
    )?.error;
    if (typeof error !== "object" || error === null)
      return `status ${status}: the body is not {"error": ...}`;
    if (
      typeof error.code !== "string" ||
      typeof error.message !== "string" ||
      typeof error.requestId !== "string"
    ) {
      return `status ${status}: the error lacks code, message or requestId`;
    }
    if (codes[error.code] !== status)
      return `status ${status} with code ${error.code}, which answers ${codes[error.code]}`;
    return undefined;
  };
}

/** A request and its answer in a few lines, for a failure message. */
export function describeExchange(
  request: FuzzRequest,
  answer: FuzzAnswer | undefined,
  problem: string,
): string {
  const body = request.body === undefined ? "(none)" : preview(request.body.toString("latin1"));
  const headers = preview(JSON.stringify(request.headers));
  const got = answer === undefined ? "(no answer)" : `${answer.status} ${preview(answer.body)}`;
  return `${problem}\n  ${request.family}: ${request.method} ${preview(request.path)}\n  headers: ${headers}\n  body: ${body}\n  answer: ${got}`;
}

function preview(text: string): string {
  return text.length > 400 ? `${text.slice(0, 400)}… (${text.length} chars)` : text;
}
