/**
 * Network pieces the MQTT connector tests put between a client and Mosquitto, so that a
 * broker failure can be made to happen once, for real:
 * - a TCP proxy on loopback that forwards bytes to a broker, and can drop its connections and
 *   refuse, or send elsewhere, the next one;
 * - a private Mosquitto on an ephemeral port with settings of the test's choosing (the shared
 *   broker on 1883 allows everything, and other tests use it).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TcpProxy {
  /** `mqtt://127.0.0.1:<port>` of the proxy. */
  url: string;
  /**
   * The next connection goes to `port` instead of the broker, or is closed as soon as it is
   * accepted (`"refuse"`); the ones after go to the broker again.
   */
  divertNext(target: number | "refuse"): void;
  /** Closes every connection through the proxy; resolves once their clients closed too. */
  dropConnections(): Promise<void>;
  close(): Promise<void>;
}

/** A proxy on an ephemeral loopback port to the broker on `brokerPort`. */
export async function createTcpProxy(brokerPort: number): Promise<TcpProxy> {
  const pairs = new Set<{ downstream: Socket; upstream: Socket }>();
  let diverted: number | "refuse" | undefined;
  const server: Server = createServer((downstream) => {
    const target = diverted ?? brokerPort;
    diverted = undefined;
    if (target === "refuse") {
      downstream.destroy();
      return;
    }
    const upstream = connect({ host: "127.0.0.1", port: target });
    const pair = { downstream, upstream };
    pairs.add(pair);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    const drop = () => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    divertNext(target) {
      diverted = target;
    },
    async dropConnections() {
      await Promise.all(
        [...pairs].map(
          ({ downstream, upstream }) =>
            new Promise<void>((resolve) => {
              downstream.once("close", () => resolve());
              upstream.destroy();
              downstream.end();
              setTimeout(() => downstream.destroy(), 1_000).unref();
            }),
        ),
      );
      // The client's own socket closes in the same turn of the loop as ours; let it be seen.
      await new Promise((resolve) => setTimeout(resolve, 20));
    },
    async close() {
      for (const { downstream, upstream } of pairs) {
        downstream.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface PrivateMosquitto {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `mosquitto` on an ephemeral loopback port with `settings` (lines of mosquitto.conf)
 * added to a memory-only, silent configuration; resolves once it accepts connections.
 */
export async function startPrivateMosquitto(
  settings: readonly string[],
): Promise<PrivateMosquitto> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "relaybus-mosquitto-"));
  const configPath = join(dir, "mosquitto.conf");
  await writeFile(
    configPath,
    [`listener ${port} 127.0.0.1`, "persistence false", "log_dest none", ...settings, ""].join(
      "\n",
    ),
  );
  const child = spawn("mosquitto", ["-c", configPath], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let failed: Error | undefined;
  child.once("error", (error) => (failed = error));
  void exited.then(() => (failed ??= new Error(`mosquitto exited (config ${configPath})`)));
  const deadline = Date.now() + 5_000;
  while (!(await accepts(port))) {
    if (failed !== undefined || Date.now() > deadline) {
      child.kill();
      await rm(dir, { recursive: true, force: true });
      throw failed ?? new Error(`mosquitto did not listen on ${port} within 5 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill();
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
