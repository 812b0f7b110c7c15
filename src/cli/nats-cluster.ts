/**
 * A local NATS JetStream cluster on loopback: nats-server child processes, one config file
 * each, routes between all of them. Used by `relaybus dev cluster` and by tests that need a
 * cluster they can kill servers of.
 *
 * When the parent exits, a process 'exit' handler SIGKILLs the servers; a failed start kills
 * what it started. A parent killed by a signal runs no 'exit' handler: by default the servers
 * stay in the parent's process group, so a Ctrl-C in the terminal reaches them too (what a
 * test run wants). `ownProcessGroup` moves them out of it, for a parent that handles its
 * signals and stops them in order (`relaybus dev cluster`).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, mkdirSync, openSync, writeFileSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { readFileTail } from "./file-tail.js";
import { waitForJetStream, waitUntilAnswering } from "./nats-readiness.js";
import { renderNatsServerConfig } from "./nats-server-config.js";

export interface NatsClusterOptions {
  /** Number of servers; default 3. */
  size?: number;
  /** Client ports, one per server (length = size), listened on at 127.0.0.1. */
  clientPorts: number[];
  /** Route ports, one per server (length = size), listened on at 127.0.0.1. */
  clusterPorts: number[];
  /** Each server's JetStream store goes in dir/<name>, its config in dir/<name>.conf, its log in dir/<name>.log. */
  dir: string;
  /** The nats-server executable; default: `nats-server` on PATH, else /usr/sbin/nats-server. */
  binary?: string;
  /** The cluster's name; default "relaybus-dev". */
  clusterName?: string;
  /**
   * Run each server in its own process group (default false), out of reach of a terminal's
   * Ctrl-C: only for a parent that stops the cluster itself on SIGINT, SIGTERM and SIGHUP.
   */
  ownProcessGroup?: boolean;
}

export interface NatsClusterServer {
  /** "n1", "n2", ... */
  name: string;
  /** nats://127.0.0.1:<clientPort> */
  url: string;
  /** The process id while it runs. */
  pid(): number | undefined;
  running(): boolean;
  /** Sends `signal` (default SIGKILL) and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** (Re)starts with the same store, config and ports; resolves once it answers on its client port. */
  start(): Promise<void>;
}

export interface NatsCluster {
  servers: NatsClusterServer[];
  urls: string[];
  /**
   * Resolves once the cluster has a JetStream meta leader and enough peers to create a
   * stream with replicas = size (at most 5); rejects after `timeoutMs` (default 30,000).
   */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** SIGTERM to all, waits up to 10 s, SIGKILL to those still running. */
  stop(): Promise<void>;
}

/** How long a starting server may take to answer on its client port. */
const START_TIMEOUT_MS = 10_000;
/** How long `stop` waits after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** JetStream's limit on a stream's replicas. */
const MAX_REPLICAS = 5;
const FALLBACK_BINARY = "/usr/sbin/nats-server";

/** `nats-server` on PATH, else /usr/sbin/nats-server if it exists, else undefined. */
export function findNatsServerBinary(): string | undefined {
  const candidates = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((dir) => dir !== "")
    .map((dir) => join(dir, "nats-server"));
  candidates.push(FALLBACK_BINARY);
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Writes the configs and starts every server; resolves once each answers on its client port. */
export async function startNatsCluster(options: NatsClusterOptions): Promise<NatsCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`NATS cluster size must be a positive integer, got ${size}`);
  if (options.clientPorts.length !== size || options.clusterPorts.length !== size) {
    throw new Error(
      `NATS cluster of ${size}: needs ${size} client ports and ${size} cluster ports, ` +
        `got ${options.clientPorts.length} and ${options.clusterPorts.length}`,
    );
  }
  const binary = options.binary ?? findNatsServerBinary();
  if (binary === undefined)
    throw new Error(`nats-server not found on PATH nor at ${FALLBACK_BINARY}`);
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });

  const handles = options.clientPorts.map((clientPort, i) => {
    const name = `n${i + 1}`;
    const configPath = join(dir, `${name}.conf`);
    const storeDir = join(dir, name);
    mkdirSync(storeDir, { recursive: true });
    const clusterPort = options.clusterPorts[i] as number;
    writeFileSync(
      configPath,
      renderNatsServerConfig({
        name,
        clientPort,
        clusterPort,
        peerClusterPorts: options.clusterPorts.filter((_, j) => j !== i),
        clusterName: options.clusterName ?? "relaybus-dev",
        storeDir,
      }),
    );
    return createServerHandle({
      name,
      binary,
      configPath,
      logPath: join(dir, `${name}.log`),
      clientPort,
      detached: options.ownProcessGroup === true,
    });
  });

  const killAllNow = () => {
    for (const handle of handles) handle.killNow();
  };
  process.on("exit", killAllNow);

  const started = await Promise.allSettled(handles.map((handle) => handle.server.start()));
  const failed = started.find(
    (result): result is PromiseRejectedResult => result.status === "rejected",
  );
  if (failed !== undefined) {
    await Promise.all(handles.map((handle) => handle.server.kill("SIGKILL")));
    process.off("exit", killAllNow);
    throw failed.reason;
  }

  const servers = handles.map((handle) => handle.server);
  const urls = servers.map((server) => server.url);
  return {
    servers,
    urls,
    waitForJetStream: (timeoutMs = 30_000) =>
      waitForJetStream(urls, Math.min(size, MAX_REPLICAS), timeoutMs),
    stop: async () => {
      await Promise.all(handles.map((handle) => handle.stop(STOP_TIMEOUT_MS)));
      process.off("exit", killAllNow);
    },
  };
}

interface ServerHandle {
  server: NatsClusterServer;
  /** Synchronous SIGKILL, for the process 'exit' handler. */
  killNow(): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once gone. */
  stop(graceMs: number): Promise<void>;
}

function createServerHandle(spec: {
  name: string;
  binary: string;
  configPath: string;
  logPath: string;
  clientPort: number;
  detached: boolean;
}): ServerHandle {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (running()) child?.kill(signal);
    await exited;
  };

  const start = async () => {
    if (running())
      throw new Error(`NATS server ${spec.name} is already running (pid ${child?.pid})`);
    // The log is appended to: a restarted server's log follows its earlier life.
    const logFd = openSync(spec.logPath, "a");
    let spawned: ChildProcess;
    try {
      spawned = spawn(spec.binary, ["-c", spec.configPath], {
        stdio: ["ignore", logFd, logFd],
        detached: spec.detached,
      });
    } finally {
      closeSync(logFd);
    }
    child = spawned;
    exited = new Promise((resolveExit) => {
      spawned.once("exit", () => resolveExit());
      // A spawn that fails (ENOENT, EACCES) emits 'error' and no 'exit'.
      spawned.once("error", () => resolveExit());
    });
    const failedToStart = new Promise<never>((_, reject) => {
      spawned.once("error", (error) =>
        reject(new Error(`NATS server ${spec.name}: cannot run ${spec.binary}: ${error.message}`)),
      );
      spawned.once("exit", (code, signal) =>
        reject(
          new Error(
            `NATS server ${spec.name} exited while starting (${signal ?? `code ${code}`}); ` +
              `the end of ${spec.logPath}:\n${readFileTail(spec.logPath)}`,
          ),
        ),
      );
    });
    failedToStart.catch(() => {}); // observed below; a later exit must not count as unhandled
    try {
      await Promise.race([waitUntilAnswering(spec.clientPort, START_TIMEOUT_MS), failedToStart]);
    } catch (error) {
      await kill("SIGKILL");
      throw error;
    }
  };

  const server: NatsClusterServer = {
    name: spec.name,
    url: `nats://127.0.0.1:${spec.clientPort}`,
    pid: () => (running() ? child?.pid : undefined),
    running,
    kill,
    start,
  };
  return {
    server,
    killNow: () => {
      if (running()) child?.kill("SIGKILL");
    },
    stop: async (graceMs) => {
      if (!running()) return exited;
      child?.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">(
        (resolveLate) => (timer = setTimeout(() => resolveLate("late"), graceMs)),
      );
      const outcome = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (outcome === "late") await kill("SIGKILL");
    },
  };
}
