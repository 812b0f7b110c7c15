/**
 * Runs `relaybus serve` as a child process (from the sources, through tsx), for tests that
 * must kill the server for real. Test receivers listen on 127.0.0.1, so the server allows
 * loopback targets explicitly (`RELAYBUS_OUTBOUND_ALLOW_LOOPBACK=true`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

export interface RelaybusProcess {
  url: string;
  child: ChildProcess;
  /** Output so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
  /** SIGTERM, and wait for a clean exit. */
  stop(): Promise<number | null>;
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

/** Starts the server and resolves once `GET /healthz` answers. */
export async function spawnRelaybus(args: {
  port: number;
  dataDir: string;
  rulesDir: string;
  /** More environment variables for the server (`RELAYBUS_CONFIG`, say). */
  env?: Record<string, string>;
}): Promise<RelaybusProcess> {
  const entry = new URL("../../src/cli/run.ts", import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", entry, "serve", "--port", String(args.port), "--data-dir", args.dataDir, "--rules-dir", args.rulesDir],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "true", ...args.env },
    },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${args.port}`;

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`relaybus exited early (${child.exitCode}):\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`relaybus did not start within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    url,
    child,
    output: () => output,
    kill: async () => {
      child.kill("SIGKILL");
      await exited;
    },
    stop: async () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
