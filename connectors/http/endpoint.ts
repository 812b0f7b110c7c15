/**
 * The HTTP endpoint of one stream: it listens while the source runs, turns each request into
 * batches and answers only once the stream's sink confirmed them. A request is the producer's
 * unit of retry: 200 means every event of it is stored, anything else means none may be (some
 * may be, so a retry can duplicate: at least once).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { SourceBatch } from "../connector.js";
import type { Clock, Logger } from "../../src/types.js";
import { HttpRefusal, sendJson, sendRefusal } from "./http-refusal.js";
import { parseEvents } from "./parse-events.js";

/** How long a stopping endpoint waits for batches in flight to be confirmed or refused (ms). */
const STOP_GRACE_MS = 400;
/** How long it then waits for answered connections to close before cutting them (ms). */
const CLOSE_GRACE_MS = 250;

export interface EndpointOptions {
  host: string;
  port: number;
  path: string;
  maxBodyBytes: number;
  authToken: string | undefined;
  maxBatchEvents: number;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * Serves until `signal` aborts, then stops listening, answers what is still in flight with
 * 503 and closes every connection, so that the port is free again when this resolves.
 * Rejects when it cannot listen.
 */
export async function serveEndpoint(
  options: EndpointOptions,
  handle: (batch: SourceBatch) => Promise<void>,
): Promise<void> {
  const { signal } = options;
  if (signal.aborted) return;
  const unanswered = new Set<ServerResponse>();
  const handOvers = new Set<Promise<unknown>>();
  const expectedAuth =
    options.authToken === undefined ? undefined : digest(`Bearer ${options.authToken}`);
  let stopping = false;

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    unanswered.add(res);
    res.on("close", () => unanswered.delete(res));
    let events;
    try {
      if (stopping)
        throw new HttpRefusal("ServiceUnavailable", "the stream is stopping; try again");
      const path = (req.url ?? "/").split("?")[0];
      if (path !== options.path)
        throw new HttpRefusal(
          "RouteNotFound",
          `no endpoint at ${path}; events go to POST ${options.path}`,
        );
      if (req.method !== "POST")
        throw new HttpRefusal(
          "MethodNotAllowed",
          `${req.method ?? ""} ${path}: only POST is allowed`,
        );
      if (expectedAuth !== undefined && !authorized(req.headers.authorization, expectedAuth)) {
        throw new HttpRefusal(
          "Unauthorized",
          "send the stream's token as Authorization: Bearer <token>",
        );
      }
      const body = await readBody(req, options.maxBodyBytes);
      events = parseEvents(body, req.headers, {
        path: options.path,
        receivedAtMs: options.clock.nowMs(),
      });
    } catch (error) {
      // A refused request may still be sending its body: close rather than read it all.
      if (error instanceof HttpRefusal) return sendRefusal(res, error, { connection: "close" });
      if (!req.complete) return void res.destroy(); // the client went away mid-body
      options.logger.error("http source: a request failed", { error: (error as Error).message });
      return sendJson(res, 500, {
        error: { code: "InternalError", message: "the request failed; see the server log" },
      });
    }
    if (events.length === 0) return sendJson(res, 200, { accepted: 0 });
    // All of the request's batches are handed over at once, in order: the stream writes
    // them in call order, and concurrent requests cannot slip between them.
    const batches: Promise<void>[] = [];
    for (let i = 0; i < events.length; i += options.maxBatchEvents) {
      batches.push(handle({ events: events.slice(i, i + options.maxBatchEvents) }));
    }
    const confirmed = Promise.all(batches);
    handOvers.add(confirmed);
    try {
      await confirmed;
      sendJson(res, 200, { accepted: events.length });
    } catch (error) {
      options.logger.warn("http source: a request's events were not confirmed; answered 503", {
        events: events.length,
        error: (error as Error).message,
      });
      sendRefusal(
        res,
        new HttpRefusal("ServiceUnavailable", "the events were not stored; try again"),
      );
    } finally {
      handOvers.delete(confirmed);
    }
  };

  const server = createServer((req, res) => void onRequest(req, res));
  await listen(server, options.port, options.host);
  if (options.authToken === undefined && !isLoopback(options.host)) {
    options.logger.warn(
      "http source: listening beyond loopback without authToken; anyone who reaches it can publish",
      {
        host: options.host,
        port: options.port,
      },
    );
  }
  if (!signal.aborted)
    await new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true }),
    );

  stopping = true;
  // Batches the stream is finishing still get their true answer; the rest get 503.
  let graceTimer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(handOvers),
    new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, STOP_GRACE_MS))),
  ]);
  clearTimeout(graceTimer);
  for (const res of unanswered) {
    sendRefusal(res, new HttpRefusal("ServiceUnavailable", "the stream is stopping; try again"), {
      connection: "close",
    });
  }
  await closeServer(server);
}

/** Stops listening and closes every connection; idle ones at once, the rest after a grace. */
export function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: Error) =>
      reject(
        new Error(`http source: cannot listen on ${host}:${port}: ${error.message}`, {
          cause: error,
        }),
      );
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
}

/** The body, or a `PayloadTooLarge` refusal as soon as it passes `maxBytes`. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpRefusal("PayloadTooLarge", `the body is larger than maxBodyBytes (${maxBytes} bytes)`);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge());
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners("data");
        req.pause();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
    req.once("close", () => {
      if (!req.complete) reject(new Error("the client closed the request before its body ended"));
    });
  });
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/**
 * Compares in constant time: both sides are hashed first, so neither the length nor the
 * first differing byte of the token shows in how long a refusal takes.
 */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const scheme = /^bearer\s+/i.exec(header ?? "");
  const given = scheme === null ? "" : `Bearer ${(header as string).slice(scheme[0].length)}`;
  return timingSafeEqual(digest(given), expected);
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
