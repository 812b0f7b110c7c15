/**
 * `relaybus dev cluster` as a user runs it (the CLI from the sources, through tsx): three real
 * nats-server processes and two Relaybus nodes on the JetStream log engine, on free loopback
 * ports in a temp dir. An event published to node 1 is read back from node 2; SIGINT stops
 * every process it started. A node that dies at start stops everything with exit code 1;
 * overlapping port ranges are refused before anything starts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { findNatsServerBinary } from "../../src/cli/nats-cluster.js";
import { freePort } from "../helpers/relaybus-process.js";
import { CLI_ENTRY, runCli } from "../helpers/run-cli.js";

const skip =
  findNatsServerBinary() === undefined
    ? "no nats-server on PATH nor at /usr/sbin/nats-server"
    : false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The first of `count` consecutive free ports, none of them in `avoid`. */
async function freePortRun(count: number, avoid: Set<number>): Promise<number> {
  for (;;) {
    const first = await freePort();
    const ports = Array.from({ length: count }, (_, i) => first + i);
    if (ports.some((port) => avoid.has(port) || port > 65535)) continue;
    if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) {
      for (const port of ports) avoid.add(port);
      return first;
    }
  }
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

interface DevClusterRun {
  output(): string;
  exited: Promise<number | null>;
  signal(signal: NodeJS.Signals): void;
  /** Resolves once the output contains `text`; fails if the command exits first or after `timeoutMs`. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
}

/** Runs `relaybus dev cluster` with 3 NATS servers and `nodes` nodes on free ports; killed after the test. */
async function runDevCluster(
  t: TestContext,
  nodes: number,
  options: { httpPort?: number } = {},
): Promise<DevClusterRun & { httpPort: number; natsPort: number; natsClusterPort: number }> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-dev-cluster-"));
  const rulesDir = join(dir, "rules");
  mkdirSync(rulesDir);
  const taken = new Set<number>();
  if (options.httpPort !== undefined)
    for (let i = 0; i < nodes; i += 1) taken.add(options.httpPort + i);
  const natsPort = await freePortRun(3, taken);
  const natsClusterPort = await freePortRun(3, taken);
  const httpPort = options.httpPort ?? (await freePortRun(nodes, taken));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      CLI_ENTRY,
      "dev",
      "cluster",
      "--nodes",
      String(nodes),
      "--nats-port",
      String(natsPort),
      "--nats-cluster-port",
      String(natsClusterPort),
      "--http-port",
      String(httpPort),
      "--dir",
      join(dir, "cluster"),
      "--rules-dir",
      rulesDir,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  t.after(async () => {
    // After a failed assertion: SIGTERM lets the command stop its children in order; if it
    // hangs, SIGKILL it and every process of its table (children run in their own groups).
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(30_000)]);
      child.kill("SIGKILL");
    }
    for (const match of output.matchAll(/ pid (\d+) /g)) {
      const pid = Number(match[1]);
      if (!processGone(pid)) process.kill(pid, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    natsPort,
    natsClusterPort,
    httpPort,
    output: () => output,
    exited,
    signal: (signal) => child.kill(signal),
    waitFor: async (text, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(text)) {
        if (child.exitCode !== null)
          assert.fail(
            `dev cluster exited (${child.exitCode}) before printing ${JSON.stringify(text)}:\n${output}`,
          );
        if (Date.now() > deadline)
          assert.fail(
            `dev cluster did not print ${JSON.stringify(text)} within ${timeoutMs} ms:\n${output}`,
          );
        await sleep(100);
      }
    },
  };
}

test(
  "dev cluster - two nodes on three NATS servers share the log, and SIGINT stops every process",
  { skip },
  async (t) => {
    const run = await runDevCluster(t, 2);
    await run.waitFor("Ctrl-C stops", 120_000);

    const rows = [
      ...run.output().matchAll(/^ {2}(NATS n\d|node \d)\s+(\S+)\s+pid (\d+)\s+(\S+)$/gm),
    ];
    assert.deepEqual(
      rows.map((row) => row[1]),
      ["NATS n1", "NATS n2", "NATS n3", "node 1", "node 2"],
      run.output(),
    );
    assert.deepEqual(
      rows.map((row) => row[2]),
      [
        `nats://127.0.0.1:${run.natsPort}`,
        `nats://127.0.0.1:${run.natsPort + 1}`,
        `nats://127.0.0.1:${run.natsPort + 2}`,
        `http://127.0.0.1:${run.httpPort}`,
        `http://127.0.0.1:${run.httpPort + 1}`,
      ],
    );
    const pids = rows.map((row) => Number(row[3]));
    assert.ok(
      pids.every((pid) => pid > 0 && !processGone(pid)),
      `every listed process runs: ${pids.join(",")}`,
    );
    assert.match(rows[3]?.[4] ?? "", /node-1\.log$/);

    const [node1, node2] = [
      `http://127.0.0.1:${run.httpPort}`,
      `http://127.0.0.1:${run.httpPort + 1}`,
    ];
    const put = await fetch(`${node1}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Entries: [{ Source: "a", DetailType: "b", Detail: "{}" }] }),
    });
    const putText = await put.text();
    assert.equal(put.status, 200, putText);
    const eventId = (JSON.parse(putText) as { Entries: { EventId?: string }[] }).Entries[0]
      ?.EventId;
    assert.ok(eventId !== undefined, putText);

    // Node 2 never saw the request: it reads the event from the shared JetStream log.
    const deadline = Date.now() + 15_000;
    let page: { events: { event: { id: string; source: string; type: string } }[] } = {
      events: [],
    };
    while (!page.events.some((e) => e.event.id === eventId)) {
      if (Date.now() > deadline)
        assert.fail(`node 2 never listed event ${eventId}: ${JSON.stringify(page)}`);
      await sleep(200);
      const response = await fetch(`${node2}/v1/buses/default/events`);
      assert.equal(response.status, 200);
      page = (await response.json()) as typeof page;
    }
    const found = page.events.find((e) => e.event.id === eventId);
    assert.equal(found?.event.source, "a");
    assert.equal(found?.event.type, "b");

    run.signal("SIGINT");
    assert.equal(await run.exited, 0, run.output());
    assert.match(run.output(), /dev cluster stopped/);
    for (const pid of pids) assert.ok(processGone(pid), `process ${pid} is gone after SIGINT`);
  },
);

test(
  "dev cluster - a node that cannot start stops everything with exit code 1 and its log tail",
  { skip },
  async (t) => {
    // Something else holds node 2's port.
    const squatterPort = await freePortRun(2, new Set());
    const squatter: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(squatterPort + 1, "127.0.0.1", resolve));
    t.after(() => new Promise<void>((resolve) => squatter.close(() => resolve())));

    const run = await runDevCluster(t, 2, { httpPort: squatterPort });
    assert.equal(await run.exited, 1, run.output());
    assert.match(
      run.output(),
      /node 2 exited \(code 1\), so everything stops; the end of \S+node-2\.log:/,
    );
    assert.match(run.output(), /EADDRINUSE/);
    assert.doesNotMatch(run.output(), /Ctrl-C stops/);
    const ports = [0, 1, 2]
      .flatMap((i) => [run.natsPort + i, run.natsClusterPort + i])
      .concat(squatterPort);
    for (const port of ports) assert.ok(await portIsFree(port), `port ${port} is free again`);
  },
);

test("dev cluster - refuses overlapping port ranges and bad counts before starting anything", async () => {
  const overlap = await runCli(["dev", "cluster", "--nats-port", "8081", "--http-port", "8082"]);
  assert.equal(overlap.code, 2);
  assert.match(overlap.stderr, /port 8082 is in the range of both --nats-port and --http-port/);

  const pastEnd = await runCli(["dev", "cluster", "--http-port", "65534", "--nodes", "3"]);
  assert.equal(pastEnd.code, 2);
  assert.match(pastEnd.stderr, /--http-port 65534: 3 ports from there run past 65535/);

  const zero = await runCli(["dev", "cluster", "--nats", "0"]);
  assert.notEqual(zero.code, 0);
  assert.match(zero.stderr, /--nats takes an integer from 1 to 9/);
});
