/**
 * A TCP proxy on loopback between a client under test and a real server, which breaks the
 * client's traffic on cue: it watches what the client sends for a marker (for NATS, the
 * `HPUB <subject> ` that starts a publish) and then cuts the connection, or holds the bytes
 * until the test has changed something on the server. Tests use it to make the next write of
 * a client they do not control fail in a chosen, real way, and to let the one after succeed.
 */
import { createServer, connect, type AddressInfo, type Socket } from "node:net";

export interface TcpFaultProxy {
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /**
   * The next time a client sends `marker`, the bytes before it pass and the connection is cut
   * both ways, so the marked message never reaches the server. Resolves once cut.
   */
  cutAt(marker: string): Promise<void>;
  /**
   * The `occurrence`-th time (from 1) a client sends `marker`, the bytes before it pass and
   * the rest wait until `release()` resolved. Resolves once released.
   */
  holdAt(marker: string, occurrence: number, release: () => Promise<void>): Promise<void>;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

interface Trap {
  marker: string;
  /** Occurrences still to let through before acting. */
  skip: number;
  act: "cut" | (() => Promise<void>);
  done: () => void;
}

/** How much of a connection's recent bytes are kept to find a marker split across two chunks. */
const TAIL_CHARS = 256;

/** Starts a proxy to `upstreamPort` on 127.0.0.1. */
export async function startTcpFaultProxy(upstreamPort: number): Promise<TcpFaultProxy> {
  let trap: Trap | undefined;
  const sockets = new Set<Socket>();

  function track(socket: Socket): Socket {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    return socket;
  }

  /** Where the armed trap's marker starts in `chunk`, or undefined; counts occurrences it lets pass. */
  function findTrap(current: Trap, tail: string, chunk: Buffer): number | undefined {
    // latin1 maps each byte to one character, so string offsets are byte offsets.
    const text = tail + chunk.toString("latin1");
    for (
      let at = text.indexOf(current.marker);
      at >= 0;
      at = text.indexOf(current.marker, at + 1)
    ) {
      // An occurrence that ended inside the tail was counted with the previous chunk.
      if (at + current.marker.length <= tail.length) continue;
      if (current.skip === 0) return Math.max(0, at - tail.length);
      current.skip--;
    }
    return undefined;
  }

  const server = createServer((client) => {
    track(client);
    const upstream = track(connect({ host: "127.0.0.1", port: upstreamPort }));
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    let tail = "";
    let forwarding = Promise.resolve();
    const forward = async (chunk: Buffer) => {
      let rest = chunk;
      const current = trap;
      const at = current === undefined ? undefined : findTrap(current, tail, rest);
      if (current !== undefined && at !== undefined) {
        trap = undefined;
        upstream.write(rest.subarray(0, at));
        if (current.act === "cut") {
          client.destroy();
          upstream.destroy();
          current.done();
          return;
        }
        try {
          await current.act();
        } finally {
          current.done();
        }
        rest = rest.subarray(at);
      }
      upstream.write(rest);
      tail = (tail + rest.toString("latin1")).slice(-TAIL_CHARS);
    };
    // Chunks are forwarded one after another, so a held chunk holds everything behind it.
    client.on("data", (chunk: Buffer) => {
      // A release that failed leaves the server in an unknown state: cut rather than guess.
      forwarding = forwarding.then(() => forward(chunk)).catch(() => {
        client.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  function arm(marker: string, skip: number, act: Trap["act"]): Promise<void> {
    if (trap !== undefined)
      throw new Error(`a trap for ${JSON.stringify(trap.marker)} is still armed`);
    return new Promise((done) => (trap = { marker, skip, act, done }));
  }

  return {
    port: (server.address() as AddressInfo).port,
    cutAt: (marker) => arm(marker, 0, "cut"),
    holdAt: (marker, occurrence, release) => arm(marker, occurrence - 1, release),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
