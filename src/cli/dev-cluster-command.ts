/**
 * `relaybus dev cluster`: a NATS JetStream cluster and several Relaybus nodes on this machine,
 * all on loopback, for trying the JetStream log engine. Runs until SIGINT, SIGTERM or SIGHUP,
 * then stops the nodes (they close cleanly while NATS still runs) and then the NATS servers.
 * Every child runs in its own process group, so a Ctrl-C reaches only this process and the
 * order holds; any other exit of this process SIGKILLs them ('exit' handlers).
 */
import { InvalidArgumentError, type Command } from "commander";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { createSecretBox, SECRET_KEY_FILE_NAME } from "../api/auth-secret-box.js";
import { join, resolve } from "node:path";
import { spawnDevClusterNode, waitForHealthz, type DevClusterNode } from "./dev-cluster-node.js";
import { readFileTail } from "./file-tail.js";
import { startNatsCluster, type NatsCluster } from "./nats-cluster.js";

export interface DevClusterFlags {
  /** NATS servers in the cluster. */
  nats: number;
  /** Relaybus nodes. */
  nodes: number;
  /** Client port of the first NATS server; the others follow. */
  natsPort: number;
  /** Route port of the first NATS server; the others follow. */
  natsClusterPort: number;
  /** HTTP port of the first node; the others follow. */
  httpPort: number;
  dir: string;
  rulesDir: string;
  allowLoopbackTargets?: boolean;
}

/** How long the cluster may take to elect a JetStream meta leader. */
const JETSTREAM_READY_TIMEOUT_MS = 60_000;
/** How long a node may take to answer /healthz (it starts through tsx on a slow machine, too). */
const NODE_READY_TIMEOUT_MS = 60_000;
/** How long a node may take to close after SIGTERM before it is killed. */
const NODE_STOP_GRACE_MS = 15_000;

function positiveInteger(option: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new InvalidArgumentError(`${option} takes an integer from 1 to ${max}.`);
    return n;
  };
}

/**
 * log.jetstream.replicas for `nats` servers: 3 from three servers up (a node's log survives one
 * server lost), else 1, since JetStream streams take 1, 3 or 5 replicas here.
 */
export function replicasFor(natsServers: number): number {
  return natsServers >= 3 ? 3 : 1;
}

export function registerDevClusterCommand(program: Command): void {
  const dev = program.command("dev").description("try Relaybus on this machine");
  dev
    .command("cluster")
    .description(
      "start a NATS JetStream cluster and Relaybus nodes on it, on loopback, until Ctrl-C",
    )
    .option("--nats <n>", "NATS servers in the JetStream cluster", positiveInteger("--nats", 9), 3)
    .option("--nodes <n>", "Relaybus nodes", positiveInteger("--nodes", 9), 3)
    .option(
      "--nats-port <port>",
      "client port of the first NATS server, the others follow",
      positiveInteger("--nats-port", 65535),
      4301,
    )
    .option(
      "--nats-cluster-port <port>",
      "route port of the first NATS server, the others follow",
      positiveInteger("--nats-cluster-port", 65535),
      6301,
    )
    .option(
      "--http-port <port>",
      "HTTP port of the first node, the others follow",
      positiveInteger("--http-port", 65535),
      8081,
    )
    .option(
      "--dir <dir>",
      "where NATS stores (dir/nats) and nodes keep data and logs",
      "./.relaybus-cluster",
    )
    .option("--rules-dir <dir>", "directory of rule files, shared by the nodes", "./rules")
    .option("--allow-loopback-targets", "let the nodes deliver to webhooks on this machine")
    .action(async (flags: DevClusterFlags) => {
      const problem = portRangeProblem(flags);
      if (problem !== undefined) {
        console.error(problem);
        process.exitCode = 2;
        return;
      }
      await runDevCluster(flags);
    });
}

function portRangeProblem(flags: DevClusterFlags): string | undefined {
  const ranges: [string, number, number][] = [
    ["--nats-port", flags.natsPort, flags.nats],
    ["--nats-cluster-port", flags.natsClusterPort, flags.nats],
    ["--http-port", flags.httpPort, flags.nodes],
  ];
  for (const [option, first, count] of ranges) {
    if (first + count - 1 > 65535)
      return `${option} ${first}: ${count} ports from there run past 65535`;
  }
  const taken = new Map<number, string>();
  for (const [option, first, count] of ranges) {
    for (let port = first; port < first + count; port += 1) {
      const other = taken.get(port);
      if (other !== undefined) return `port ${port} is in the range of both ${other} and ${option}`;
      taken.set(port, option);
    }
  }
  return undefined;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Starts everything; returns once the table is printed (or a failure began the shutdown). */
async function runDevCluster(flags: DevClusterFlags): Promise<void> {
  const dir = resolve(flags.dir);
  const rulesDir = resolve(flags.rulesDir);
  const replicas = replicasFor(flags.nats);
  mkdirSync(dir, { recursive: true });

  const nodes: DevClusterNode[] = [];
  let cluster: NatsCluster | undefined;
  let clusterStarting: Promise<unknown> = Promise.resolve();
  let stopping = false;

  const killNodesNow = () => {
    for (const node of nodes) node.killNow();
  };
  process.on("exit", killNodesNow);

  const shutdown = (code: number) => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      let exitCode = code;
      try {
        await Promise.all(nodes.map((node) => node.stop(NODE_STOP_GRACE_MS)));
        // A cluster still starting is stopped once started: its start is bounded (10 s a server).
        await clusterStarting.catch(() => {});
        await cluster?.stop();
        console.log("dev cluster stopped");
      } catch (error) {
        console.error(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        exitCode = 1;
      }
      process.exit(exitCode);
    })();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second Ctrl-C: no more waiting. The 'exit' handlers kill what still runs.
      console.error(`${signal} again: killing everything`);
      process.exit(1);
    }
    console.log(`${signal}: stopping the nodes, then NATS (Ctrl-C again to kill them at once)`);
    shutdown(0);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // A closed terminal: the children sit in their own process groups and would outlive us.
  process.on("SIGHUP", onSignal);

  try {
    const natsDir = join(dir, "nats");
    console.log(
      `starting ${plural(flags.nats, "NATS server")} (JetStream stores and logs in ${natsDir})`,
    );
    const starting = startNatsCluster({
      size: flags.nats,
      clientPorts: range(flags.natsPort, flags.nats),
      clusterPorts: range(flags.natsClusterPort, flags.nats),
      dir: natsDir,
      ownProcessGroup: true,
    });
    clusterStarting = starting;
    cluster = await starting;
    if (stopping) return;
    await cluster.waitForJetStream(JETSTREAM_READY_TIMEOUT_MS);
    if (stopping) return;

    console.log(
      `starting ${plural(flags.nodes, "Relaybus node")} (JetStream replicas: ${replicas})`,
    );
    shareSecretKey(dir, flags.nodes);
    for (const [i, port] of range(flags.httpPort, flags.nodes).entries()) {
      const node = spawnDevClusterNode({
        index: i + 1,
        port,
        dataDir: join(dir, `node-${i + 1}`),
        rulesDir,
        logPath: join(dir, `node-${i + 1}.log`),
        natsUrls: cluster.urls,
        replicas,
        allowLoopbackTargets: flags.allowLoopbackTargets === true,
      });
      nodes.push(node);
      void node.exited.then(({ code, signal }) => {
        if (stopping) return;
        console.error(
          `node ${node.index} exited (${signal ?? `code ${code}`}), so everything stops; ` +
            `the end of ${node.logPath}:\n${readFileTail(node.logPath, 40)}`,
        );
        shutdown(1);
      });
    }
    await Promise.all(nodes.map((node) => waitForHealthz(node, NODE_READY_TIMEOUT_MS)));
    if (stopping) return;
    printTable(dir, cluster, nodes);
  } catch (error) {
    if (stopping) return; // the failure that began the shutdown was reported already
    console.error(error instanceof Error ? error.message : String(error));
    shutdown(1);
  }
}

function printTable(dir: string, cluster: NatsCluster, nodes: DevClusterNode[]): void {
  const rows: string[][] = [
    ...cluster.servers.map((server) => [
      `NATS ${server.name}`,
      server.url,
      `pid ${server.pid() ?? "-"}`,
      join(dir, "nats", `${server.name}.log`),
    ]),
    ...nodes.map((node) => [
      `node ${node.index}`,
      node.url,
      `pid ${node.pid ?? "-"}`,
      node.logPath,
    ]),
  ];
  const widths = [0, 1, 2].map((column) =>
    Math.max(...rows.map((row) => (row[column] ?? "").length)),
  );
  console.log(`\nRelaybus dev cluster in ${dir}`);
  for (const row of rows) {
    console.log(
      `  ${row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join("  ")
        .trimEnd()}`,
    );
  }
  console.log("Ctrl-C stops the nodes, then the NATS servers.");
}

/**
 * Gives every node the same `keys.secret` (the key that seals API keys' SigV4 secrets): API keys
 * are shared by the cluster, and a node can check a SigV4 signature only with the key that
 * sealed the secret. Made once in `dir`, copied into each node's directory that has none.
 */
function shareSecretKey(dir: string, nodes: number): void {
  createSecretBox(dir).seal("relaybus-dev-cluster", "make the key file");
  for (let i = 1; i <= nodes; i++) {
    const nodeDir = join(dir, `node-${i}`);
    mkdirSync(nodeDir, { recursive: true });
    if (!existsSync(join(nodeDir, SECRET_KEY_FILE_NAME))) {
      copyFileSync(join(dir, SECRET_KEY_FILE_NAME), join(nodeDir, SECRET_KEY_FILE_NAME));
    }
  }
}
