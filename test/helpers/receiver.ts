/**
 * A real HTTP receiver for tests: it listens on 127.0.0.1 on an ephemeral port, records
 * every request, and answers as scripted (500 twice then 200, 429 with Retry-After, 400, or
 * hang). Anything not scripted gets 200.
 *
 *     const receiver = await createReceiver();
 *     receiver.script("/flaky", [{ status: 500 }, { status: 500 }]);   // then 200
 *     receiver.script("/slow", ["hang"]);                                // never answers
 *     await receiver.waitFor(3, 5_000, "/flaky");
 *     await receiver.close();
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the receiver saw it. */
export interface ReceivedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  /** Lower-case header names, as Node parses them. */
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text. */
  body: string;
  /** The body's bytes. */
  rawBody: Buffer;
  /** When the body had arrived, ms since the epoch. */
  atMs: number;
  /** The client's port: equal ports mean one kept-alive connection. */
  remotePort: number;
}

/** One scripted answer; `"hang"` never answers (until the receiver closes). */
export type ScriptedAnswer =
  | { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }
  | "hang";

/** A running receiver. */
export interface Receiver {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  readonly url: string;
  /** Every request so far, in arrival order. */
  readonly requests: readonly ReceivedRequest[];
  /** The requests whose path (without query) is `path`. */
  requestsTo(path: string): ReceivedRequest[];
  /**
   * Answers the next requests to `path` (without query) with `answers`, in order, then
   * with 200 again. Calling it again replaces what is left of that path's script.
   */
  script(path: string, answers: readonly ScriptedAnswer[]): void;
  /** Answers every request to `path` with `answer` from now on, until scripted again. */
  always(path: string, answer: ScriptedAnswer): void;
  /**
   * Resolves with the requests (to `path` if given) once there are at least `count`;
   * rejects after `timeoutMs` saying how many arrived.
   */
  waitFor(count: number, timeoutMs: number, path?: string): Promise<ReceivedRequest[]>;
  /** Ends hanging requests, closes every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Starts a receiver on 127.0.0.1, on an ephemeral port or on `options.port` (a receiver that
 * comes back where a target's URL points).
 */
export async function createReceiver(options: { port?: number } = {}): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const scripts = new Map<string, ScriptedAnswer[]>();
  const standing = new Map<string, ScriptedAnswer>();
  const hanging = new Set<ServerResponse>();
  const waiters = new Set<() => void>();
  let closed = false;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks);
      const path = req.url ?? "/";
      requests.push({
        method: req.method ?? "",
        path,
        headers: req.headers,
        body: rawBody.toString("utf8"),
        rawBody,
        atMs: Date.now(),
        remotePort: req.socket.remotePort ?? 0,
      });
      for (const wake of [...waiters]) wake();
      answer(res, nextAnswer(path.split("?", 1)[0]!));
    });
  });

  function nextAnswer(path: string): ScriptedAnswer {
    const queue = scripts.get(path);
    if (queue !== undefined && queue.length > 0) return queue.shift()!;
    return standing.get(path) ?? { status: 200 };
  }

  function answer(res: ServerResponse, scripted: ScriptedAnswer): void {
    if (scripted === "hang") {
      hanging.add(res);
      res.on("close", () => hanging.delete(res));
      return;
    }
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(scripted.status, scripted.headers);
      res.end(scripted.body ?? "");
    };
    if (scripted.delayMs !== undefined) {
      hanging.add(res);
      const timer = setTimeout(() => {
        hanging.delete(res);
        send();
      }, scripted.delayMs);
      res.on("close", () => clearTimeout(timer));
    } else {
      send();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const filtered = (path?: string) =>
    path === undefined ? [...requests] : requests.filter((r) => r.path.split("?", 1)[0] === path);

  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    requestsTo: (path) => filtered(path),
    script(path, answers) {
      scripts.set(path, [...answers]);
    },
    always(path, scripted) {
      scripts.delete(path);
      standing.set(path, scripted);
    },
    waitFor(count, timeoutMs, path) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = filtered(path);
          if (found.length < count) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const where = path === undefined ? "" : ` to ${path}`;
          reject(new Error(`receiver: waited ${timeoutMs} ms for ${count} requests${where}, got ${filtered(path).length}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const res of hanging) res.destroy();
      hanging.clear();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await stopped;
    },
  };
}
