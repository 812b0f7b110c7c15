/**
 * The webhook receiver of `bench/deliver.ts`, run as its own process (forked, with IPC) so
 * that its CPU is not counted against Relaybus and it never shares an event loop with the
 * load generator. It answers 200 on keep-alive connections once it has read each body to its
 * end, counts requests per path, and, while recording, notes when each event arrived by its
 * id. A plain node:http server, kept lean (no body kept unless recording, no `Date` header,
 * the answer's headers as a flat list): ~27 µs of CPU a request here, ~30 before.
 *
 * Times are `performance.timeOrigin + performance.now()`: ms since the epoch with sub-ms
 * precision, comparable across processes of one machine.
 *
 * Messages from the parent:
 * - `{type: "expect", count}`: forget the counts; say `reached` once `count` requests came.
 * - `{type: "record", on}`: while on, parse each body's CloudEvent `id` and note its arrival.
 * - `{type: "arrivals"}`: answer `{type: "arrivals", arrivals: [[id, atMs], ...]}` and forget them.
 * - `{type: "stop"}`: close and exit.
 *
 * Messages to the parent: `{type: "ready", port}`, `{type: "reached", count, firstAtMs,
 * lastAtMs, paths, minPerPath, maxPerPath}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

type FromParent =
  | { type: "expect"; count: number }
  | { type: "record"; on: boolean }
  | { type: "arrivals" }
  | { type: "stop" };

const now = (): number => performance.timeOrigin + performance.now();

let expected = Number.POSITIVE_INFINITY;
let total = 0;
let firstAtMs = 0;
let perPath = new Map<string, number>();
let recording = false;
let arrivals: [string, number][] = [];

function report(): void {
  const counts = [...perPath.values()];
  process.send?.({
    type: "reached",
    count: total,
    firstAtMs,
    lastAtMs: now(),
    paths: counts.length,
    minPerPath: Math.min(...counts),
    maxPerPath: Math.max(...counts),
  });
}

/** The answer's headers, as a flat list: cheaper for node:http than an object per request. */
const ANSWER_HEADERS = ["content-length", "0"];

/** Counts a request once its body has been read to its end, and answers it. */
function arrived(req: IncomingMessage, res: ServerResponse, body: Buffer[] | undefined): void {
  const at = now();
  res.writeHead(200, ANSWER_HEADERS).end();
  if (total === 0) firstAtMs = at;
  total++;
  const path = req.url ?? "/";
  perPath.set(path, (perPath.get(path) ?? 0) + 1);
  if (body !== undefined) {
    const id =
      req.headers["ce-id"] ??
      (JSON.parse(Buffer.concat(body).toString("utf8")) as { id: string }).id;
    arrivals.push([String(id), at]);
  }
  if (total === expected) report();
}

// Each body is read to its end before the request counts; it is kept only while recording
// (to find the event's id). No `Date` header: one less string per answer.
const server = createServer(
  { keepAliveTimeout: 65_000 },
  (req: IncomingMessage, res: ServerResponse) => {
    res.sendDate = false;
    if (recording) {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => arrived(req, res, chunks));
      return;
    }
    req.on("end", () => arrived(req, res, undefined));
    req.resume();
  },
);

process.on("message", (message: FromParent) => {
  switch (message.type) {
    case "expect":
      expected = message.count;
      total = 0;
      firstAtMs = 0;
      perPath = new Map();
      break;
    case "record":
      recording = message.on;
      break;
    case "arrivals":
      process.send?.({ type: "arrivals", arrivals });
      arrivals = [];
      break;
    case "stop":
      server.close(() => process.exit(0));
      server.closeAllConnections();
      break;
  }
});

server.listen(0, "127.0.0.1", () => {
  process.send?.({ type: "ready", port: (server.address() as AddressInfo).port });
});
