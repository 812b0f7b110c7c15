/**
 * Starts `relaybus serve` as a child process for a benchmark, on a free loopback port with the
 * given data and rules directories, and waits until it answers; or, as the ingest
 * benchmark's yardstick, a bare node:http server (`bare-http-server.mjs`). The server runs
 * compiled when the benchmark does (`npm run bench:*`), from the sources through tsx when
 * the benchmark was started with tsx (see `bench-modules.ts`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { MODULE_EXEC_ARGV, modulePath, REPO_ROOT } from "./bench-modules.js";

/**
 * The node flags the `relaybus` command runs with, from its second line (`exec node FLAGS
 * "$0" "$@"`): the benchmarks measure the server as users run it.
 */
const RELAYBUS_NODE_FLAGS = relaybusNodeFlags();

/** Reads the flags from `bin/relaybus.js`; `test/unit/node-flags.test.ts` holds `npm start` to them. */
export function relaybusNodeFlags(): string[] {
  const exec = /^':' \/\/; exec node (.*) "\$0" "\$@"$/m.exec(
    readFileSync(join(REPO_ROOT, "bin", "relaybus.js"), "utf8"),
  );
  if (exec === null) throw new Error("bin/relaybus.js: no `':' //; exec node FLAGS \"$0\" \"$@\"` line to take node's flags from");
  return exec[1]!.split(" ").filter((flag) => flag !== "");
}

export interface BenchServer {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** SIGTERM, and wait for the process to exit; later calls wait for the same exit. */
  stop(): Promise<void>;
}

/** `dir` holds `data/` and `rules/`; `env` adds environment variables (RELAYBUS_DURABILITY, say). */
export async function startBenchServer(
  dir: string,
  env: Record<string, string> = {},
): Promise<BenchServer> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...RELAYBUS_NODE_FLAGS,
      // Extra node flags for the server only, e.g. RELAYBUS_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
      ...(process.env["RELAYBUS_BENCH_NODE_ARGS"] ?? "").split(" ").filter((arg) => arg !== ""),
      ...MODULE_EXEC_ARGV,
      modulePath("src/cli/run"),
      "serve",
      "--port",
      String(port),
      "--data-dir",
      join(dir, "data"),
      "--rules-dir",
      join(dir, "rules"),
    ],
    // The server's stdout only with RELAYBUS_BENCH_SERVER_STDOUT=1: where V8 writes what
    // RELAYBUS_BENCH_NODE_ARGS="--trace-gc" asks for.
    {
      stdio: ["ignore", process.env["RELAYBUS_BENCH_SERVER_STDOUT"] === "1" ? "inherit" : "ignore", "inherit"],
      env: { ...process.env, ...env },
    },
  );
  return await answering(child, port, "relaybus", async (url) => (await fetch(`${url}/healthz`)).ok);
}

/**
 * Starts `bench/bare-http-server.mjs` (read the body, `JSON.parse` it, answer a fixed JSON)
 * with the same node flags as the Relaybus server, on a free loopback port.
 */
export async function startBareHttpServer(): Promise<BenchServer> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...RELAYBUS_NODE_FLAGS, join(REPO_ROOT, "bench", "bare-http-server.mjs"), String(port)],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  // Any answer will do (a GET's empty body is refused with 400): fetch throws until it listens.
  return await answering(child, port, "the bare node:http server", async (url) => {
    await fetch(url);
    return true;
  });
}

/** Waits until `ready` says `child` answers, for 20 s at most. */
async function answering(
  child: ChildProcess,
  port: number,
  name: string,
  ready: (url: string) => Promise<boolean>,
): Promise<BenchServer> {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      child.kill("SIGTERM");
      await exited;
    })());
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if (await ready(url)) return { port, url, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`${name} did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
