/**
 * The webhook receiver of `bench/stream.ts`, run as its own process (forked, with IPC) so that
 * its CPU is not counted against Relaybus. It answers 200 at once on keep-alive connections
 * and counts, per path, requests, events and body bytes, and when the first and the last
 * event arrived.
 *
 * Events are counted inside each body: a `application/cloudevents-batch+json` body (the
 * webhook sink's `mode: batch`) holds one `"specversion"` key per event, so the receiver
 * counts that key's occurrences instead of parsing the array. JSON.parse of 20 MB/s would
 * cost this process more CPU than everything else it does, on a machine whose cores Relaybus
 * also needs; the bench's events carry no such string in their data, so the count is exact.
 * Any other body counts as one event.
 *
 * Times are `performance.timeOrigin + performance.now()`: ms since the epoch with sub-ms
 * precision, comparable across processes of one machine.
 *
 * Messages from the parent:
 * - `{type: "expect", path, events}`: say `reached` (with that path's counts) once `events`
 *   events came to `path`.
 * - `{type: "sample", path}`: answer `{type: "sample", ...counts}` for `path` now.
 * - `{type: "stop"}`: close and exit.
 *
 * Messages to the parent: `{type: "ready", port}`, `{type: "reached", ...counts}`,
 * `{type: "sample", ...counts}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** What arrived at one path so far. */
export interface PathCounts {
  path: string;
  requests: number;
  events: number;
  /** Body bytes, the batch array's brackets and commas included. */
  bytes: number;
  /** Events in the first request: the rate from the first arrival on leaves them out. */
  firstRequestEvents: number;
  /** Arrival of the first and of the last request (0 before any). */
  firstAtMs: number;
  lastAtMs: number;
  /** When these counts were taken. */
  atMs: number;
}

type FromParent =
  | { type: "expect"; path: string; events: number }
  | { type: "sample"; path: string }
  | { type: "stop" };

const SPECVERSION_KEY = Buffer.from('"specversion"');

const now = (): number => performance.timeOrigin + performance.now();

const counts = new Map<string, PathCounts>();
const expected = new Map<string, number>();

function countsOf(path: string): PathCounts {
  let entry = counts.get(path);
  if (entry === undefined) {
    entry = {
      path,
      requests: 0,
      events: 0,
      bytes: 0,
      firstRequestEvents: 0,
      firstAtMs: 0,
      lastAtMs: 0,
      atMs: 0,
    };
    counts.set(path, entry);
  }
  return entry;
}

function eventsIn(body: Buffer, contentType: string | undefined): number {
  if (contentType?.startsWith("application/cloudevents-batch+json") !== true) return 1;
  let events = 0;
  for (
    let at = body.indexOf(SPECVERSION_KEY);
    at !== -1;
    at = body.indexOf(SPECVERSION_KEY, at + SPECVERSION_KEY.length)
  ) {
    events++;
  }
  return events;
}

const server = createServer(
  { keepAliveTimeout: 65_000 },
  (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const at = now();
      res.writeHead(200, { "content-length": "0" }).end();
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const events = eventsIn(body, req.headers["content-type"]);
      const path = req.url ?? "/";
      const entry = countsOf(path);
      if (entry.requests === 0) {
        entry.firstAtMs = at;
        entry.firstRequestEvents = events;
      }
      entry.requests++;
      entry.events += events;
      entry.bytes += body.length;
      entry.lastAtMs = at;
      const want = expected.get(path);
      if (want !== undefined && entry.events >= want) {
        expected.delete(path);
        process.send?.({ type: "reached", ...entry, atMs: now() });
      }
    });
  },
);

process.on("message", (message: FromParent) => {
  switch (message.type) {
    case "expect":
      if (countsOf(message.path).events >= message.events) {
        process.send?.({ type: "reached", ...countsOf(message.path), atMs: now() });
      } else {
        expected.set(message.path, message.events);
      }
      break;
    case "sample":
      process.send?.({ type: "sample", ...countsOf(message.path), atMs: now() });
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
