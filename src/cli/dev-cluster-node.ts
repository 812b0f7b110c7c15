/**
 * One Relaybus node of `relaybus dev cluster`: `relaybus serve` as a child process, run by
 * the same Node binary and CLI entry as this process (so it also works from the sources
 * through tsx), on the JetStream log engine, its output in a log file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";

export interface DevClusterNodeSpec {
  /** 1, 2, ... */
  index: number;
  /** HTTP port, on 127.0.0.1. */
  port: number;
  dataDir: string;
  rulesDir: string;
  /** stdout and stderr of the node go here (truncated at start). */
  logPath: string;
  natsUrls: string[];
  /** log.jetstream.replicas: 1, 3 or 5. */
  replicas: number;
  allowLoopbackTargets: boolean;
}

export interface DevClusterNode {
  index: number;
  url: string;
  logPath: string;
  pid: number | undefined;
  /** Resolves when the process has exited, with how. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /** SIGTERM (the node closes cleanly), then SIGKILL after `graceMs`; resolves once gone. */
  stop(graceMs: number): Promise<void>;
  /** Synchronous SIGKILL, for a process 'exit' handler. */
  killNow(): void;
}

/**
 * Node options of this process worth passing on: `--import tsx` and the like; not
 * `--inspect*`, whose debugger port N children cannot all take.
 */
function inheritedExecArgv(): string[] {
  return process.execArgv.filter((arg) => !arg.startsWith("--inspect"));
}

export function spawnDevClusterNode(spec: DevClusterNodeSpec): DevClusterNode {
  const entry = process.argv[1];
  if (entry === undefined)
    throw new Error("cannot tell which script runs the relaybus CLI (process.argv[1] is missing)");
  const args = [
    ...inheritedExecArgv(),
    entry,
    "serve",
    "--port",
    String(spec.port),
    "--data-dir",
    spec.dataDir,
    "--rules-dir",
    spec.rulesDir,
    "--log-engine",
    "jetstream",
    "--nats-servers",
    spec.natsUrls.join(","),
  ];
  if (spec.allowLoopbackTargets) args.push("--allow-loopback-targets");

  const logFd = openSync(spec.logPath, "w");
  let child: ChildProcess;
  try {
    // Its own process group: a Ctrl-C in the terminal reaches only `dev cluster`, which stops
    // the nodes before NATS. A node that lost NATS first would only log reconnect errors.
    child = spawn(process.execPath, args, {
      stdio: ["ignore", logFd, logFd],
      detached: true,
      env: { ...process.env, RELAYBUS_JETSTREAM_REPLICAS: String(spec.replicas) },
    });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  const running = () =>
    child.exitCode === null && child.signalCode === null && child.pid !== undefined;

  return {
    index: spec.index,
    url: `http://127.0.0.1:${spec.port}`,
    logPath: spec.logPath,
    pid: child.pid,
    exited,
    running,
    stop: async (graceMs) => {
      if (!running()) return void (await exited);
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">(
        (resolve) => (timer = setTimeout(() => resolve("late"), graceMs)),
      );
      const outcome = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (outcome === "late") {
        child.kill("SIGKILL");
        await exited;
      }
    },
    killNow: () => {
      if (running()) child.kill("SIGKILL");
    },
  };
}

/**
 * Resolves once the node answers `GET /healthz` with a 2xx; rejects when it exits first or
 * after `timeoutMs`.
 */
export async function waitForHealthz(node: DevClusterNode, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void node.exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`node ${node.index} exited before answering ${node.url}/healthz`);
    try {
      const response = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(
        `node ${node.index} did not answer ${node.url}/healthz within ${timeoutMs} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
