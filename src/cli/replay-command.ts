/**
 * `relaybus replay start|status|cancel|list`: replays of a running Relaybus, over its HTTP
 * API (`--url`, `RELAYBUS_URL`, default http://127.0.0.1:8080).
 *
 *     relaybus replay start --name fix-1 --from 2026-01-02T00:00:00Z --to 2026-01-02T06:00:00Z \
 *       --archive orders-archive --rule fulfil --target warehouse
 *     relaybus replay status fix-1
 *     relaybus replay cancel fix-1
 *     relaybus replay list
 *
 * `start` follows the replay with a progress bar (on a terminal) until it has ended, then
 * prints a summary line; `--no-wait` returns at once. Exit status 1 when the server refuses
 * a request, and when the replay that `start` followed failed or was cancelled.
 */
import { SingleBar, Presets } from "cli-progress";
import type { Command } from "commander";
import { callApi } from "./api-client.js";
import { isoSeconds as iso } from "./text-format.js";
import { parseWhen } from "./dlq-command.js";

interface ServerFlags {
  url?: string;
}

interface StartFlags extends ServerFlags {
  name: string;
  from: string;
  to: string;
  archive?: string;
  bus?: string;
  toBus?: string;
  rule?: string;
  target?: string;
  description?: string;
  wait: boolean;
  intervalMs: string;
}

/** A replay as the API shows it (`GET /v1/replays/{name}`). */
interface ReplayView {
  name: string;
  source: { archive?: string; bus?: string };
  destination: { bus: string; rule?: string; targetId?: string };
  fromMs: number;
  toMs: number;
  state: "running" | "completed" | "cancelled" | "failed";
  total: number;
  replayed: number;
  percent: number;
  deliveries: number;
  pendingDeliveries: number;
  startedAtMs: number;
  endedAtMs?: number;
  error?: string;
}

const URL_HELP = "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)";
const WHEN_HELP = "an RFC 3339 time, ms since the epoch, or a duration ago (90s, 15m, 2h, 7d)";

export function registerReplayCommand(program: Command): void {
  const replay = program
    .command("replay")
    .description("replay archived or logged events to a bus, a rule or a target");

  replay
    .command("start")
    .description("start a replay and follow it with a progress bar until it ends")
    .requiredOption("--name <name>", "the replay's name (never reused)")
    .requiredOption("--from <when>", `start of the window, inclusive: ${WHEN_HELP}`)
    .requiredOption("--to <when>", "end of the window, inclusive: like --from")
    .option("--archive <name>", "replay from this archive")
    .option("--bus <name>", "replay from this bus's log")
    .option("--to-bus <name>", "send to this bus's rules (default: the source's bus)")
    .option("--rule <name>", "send only to this rule")
    .option("--target <id>", "send only to this target of --rule")
    .option("--description <text>", "a note kept with the replay")
    .option("--no-wait", "return once started instead of following it")
    .option("--interval-ms <ms>", "how often to ask for progress", "250")
    .option("--url <url>", URL_HELP)
    .action(async (flags: StartFlags) => {
      const body = await startBody(flags);
      const started = (await callApi(flags.url, "POST", "/v1/replays", body)) as ReplayView;
      if (!flags.wait) {
        console.log(summary(started));
        return;
      }
      const ended = await follow(flags, started);
      console.log(summary(ended));
      if (ended.state !== "completed") process.exitCode = 1;
    });

  replay
    .command("status")
    .description("show a replay's state and progress")
    .argument("<name>", "the replay's name")
    .option("--json", "print the server's JSON")
    .option("--url <url>", URL_HELP)
    .action(async (name: string, flags: ServerFlags & { json?: boolean }) => {
      const found = (await callApi(
        flags.url,
        "GET",
        `/v1/replays/${encodeURIComponent(name)}`,
      )) as ReplayView;
      console.log(flags.json === true ? JSON.stringify(found, null, 2) : statusText(found));
    });

  replay
    .command("cancel")
    .description("cancel a running replay (deliveries already recorded still go out)")
    .argument("<name>", "the replay's name")
    .option("--url <url>", URL_HELP)
    .action(async (name: string, flags: ServerFlags) => {
      const found = (await callApi(
        flags.url,
        "POST",
        `/v1/replays/${encodeURIComponent(name)}:cancel`,
      )) as ReplayView;
      console.log(
        found.state === "cancelled"
          ? summary(found)
          : `replay ${found.name} had already ended: ${found.state}`,
      );
    });

  replay
    .command("list")
    .description("list replays, newest first")
    .option("-n, --limit <n>", "how many at most (1 to 1000)", "50")
    .option("--json", "print the server's JSON instead of a table")
    .option("--url <url>", URL_HELP)
    .action(async (flags: ServerFlags & { limit: string; json?: boolean }) => {
      const { replays } = (await callApi(
        flags.url,
        "GET",
        `/v1/replays?limit=${encodeURIComponent(flags.limit)}`,
      )) as {
        replays: ReplayView[];
      };
      if (flags.json === true) {
        console.log(JSON.stringify(replays, null, 2));
        return;
      }
      if (replays.length === 0) {
        console.log("no replays");
        return;
      }
      console.log(listTable(replays));
    });
}

/** The `POST /v1/replays` body of the flags; the destination defaults to the source's bus. */
async function startBody(flags: StartFlags): Promise<Record<string, unknown>> {
  if ((flags.archive === undefined) === (flags.bus === undefined)) {
    throw new Error("replay start: give the source, either --archive <name> or --bus <name>");
  }
  if (flags.target !== undefined && flags.rule === undefined) {
    throw new Error("replay start: --target needs --rule (a target id is unique within its rule)");
  }
  let destinationBus = flags.toBus ?? flags.bus;
  if (destinationBus === undefined) {
    const archive = (await callApi(
      flags.url,
      "GET",
      `/v1/archives/${encodeURIComponent(flags.archive!)}`,
    )) as { bus: string };
    destinationBus = archive.bus;
  }
  return {
    name: flags.name,
    ...(flags.description === undefined ? {} : { description: flags.description }),
    source: flags.archive === undefined ? { bus: flags.bus } : { archive: flags.archive },
    fromTime: parseWhen(flags.from, "--from"),
    toTime: parseWhen(flags.to, "--to"),
    destination: {
      bus: destinationBus,
      ...(flags.rule === undefined ? {} : { rule: flags.rule }),
      ...(flags.target === undefined ? {} : { targetId: flags.target }),
    },
  };
}

/** Asks for progress until the replay is no longer running, drawing a bar on a terminal. */
async function follow(flags: StartFlags, started: ReplayView): Promise<ReplayView> {
  const intervalMs = Number(flags.intervalMs);
  if (!Number.isInteger(intervalMs) || intervalMs < 10) {
    throw new Error(
      `--interval-ms: expected an integer of at least 10, got ${JSON.stringify(flags.intervalMs)}`,
    );
  }
  const bar = new SingleBar(
    {
      format: `replay ${started.name} [{bar}] {percentage}% | {value}/{total} events | {deliveries} deliveries, {pending} pending | ETA {eta_formatted}`,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  bar.start(Math.max(started.total, 1), started.replayed, {
    deliveries: started.deliveries,
    pending: started.pendingDeliveries,
  });
  let current = started;
  try {
    while (current.state === "running") {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      current = (await callApi(
        flags.url,
        "GET",
        `/v1/replays/${encodeURIComponent(started.name)}`,
      )) as ReplayView;
      bar.setTotal(Math.max(current.total, 1));
      bar.update(current.replayed, {
        deliveries: current.deliveries,
        pending: current.pendingDeliveries,
      });
    }
  } finally {
    bar.stop();
  }
  return current;
}

function summary(r: ReplayView): string {
  const base = `replay ${r.name} ${r.state}: ${r.replayed} of ${r.total} events replayed, ${r.deliveries} deliveries (${r.pendingDeliveries} pending)`;
  return r.error === undefined ? base : `${base}: ${r.error}`;
}

function statusText(r: ReplayView): string {
  const source =
    r.source.archive === undefined ? `log of bus ${r.source.bus}` : `archive ${r.source.archive}`;
  const destination = [
    `bus ${r.destination.bus}`,
    ...(r.destination.rule === undefined ? [] : [`rule ${r.destination.rule}`]),
    ...(r.destination.targetId === undefined ? [] : [`target ${r.destination.targetId}`]),
  ].join(", ");
  return [
    `replay ${r.name}: ${r.state}`,
    `  source:      ${source}`,
    `  window:      ${iso(r.fromMs)} to ${iso(r.toMs)}`,
    `  destination: ${destination}`,
    `  progress:    ${r.replayed} of ${r.total} events (${r.percent}%)`,
    `  deliveries:  ${r.deliveries} (${r.pendingDeliveries} pending)`,
    `  started:     ${iso(r.startedAtMs)}`,
    ...(r.endedAtMs === undefined ? [] : [`  ended:       ${iso(r.endedAtMs)}`]),
    ...(r.error === undefined ? [] : [`  error:       ${r.error}`]),
  ].join("\n");
}

function listTable(replays: readonly ReplayView[]): string {
  const header = ["NAME", "STATE", "PROGRESS", "SOURCE", "DESTINATION", "STARTED"];
  const rows = replays.map((r) => [
    r.name,
    r.state,
    `${r.replayed}/${r.total} (${r.percent}%)`,
    r.source.archive === undefined ? `bus:${r.source.bus}` : `archive:${r.source.archive}`,
    [r.destination.bus, r.destination.rule, r.destination.targetId]
      .filter((p) => p !== undefined)
      .join("/"),
    iso(r.startedAtMs),
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
