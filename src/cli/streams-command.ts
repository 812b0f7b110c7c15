/**
 * `relaybus streams list|show|pause|resume|capacity|dead-letters`: the event streams of a
 * running Relaybus, over its HTTP API (`--url`, `RELAYBUS_URL`, default http://127.0.0.1:8080).
 *
 *     relaybus streams list                 # name, state, CU, events in/out, throttled time
 *     relaybus streams show orders-out      # definition, counters, live figures, last error
 *     relaybus streams pause orders-out
 *     relaybus streams resume orders-out    # also starts a failed stream again
 *     relaybus streams capacity orders-out  # every CU change, with why
 *     relaybus streams dead-letters orders-out
 *     relaybus streams redrive orders-out --all   # or ids; purge the same way
 *
 * Exit status 1 when the server refuses the request.
 */
import type { Command } from "commander";
import type { CuChange, StreamDeadLetter } from "../log/stream-store.js";
import type { StreamView } from "../streams/stream-manager.js";
import { callApi } from "./api-client.js";
import { indent, isoSeconds, prettyBody, table, truncate } from "./text-format.js";

interface ServerFlags {
  url?: string;
  json?: boolean;
}

const URL_HELP = "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)";

const count = (n: number) => n.toLocaleString("en-US");
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function stateOf(stream: StreamView): string {
  return stream.desired === "paused" && stream.state !== "paused" ? `${stream.state} (pausing)` : stream.state;
}

function listTable(streams: readonly StreamView[]): string {
  return table(
    ["NAME", "STATE", "CU", "IN", "OUT", "FILTERED", "DEAD", "THROTTLED", "SOURCE → SINK"],
    streams.map((s) => [
      s.name,
      stateOf(s),
      `${s.capacity.currentCU} (${s.capacity.minCU}-${s.capacity.maxCU})`,
      count(s.counters.eventsIn),
      count(s.counters.eventsOut),
      count(s.counters.eventsFiltered),
      count(s.counters.eventsDeadLettered),
      seconds(s.counters.throttledMs),
      `${Object.keys(s.definition.source)[0]} → ${Object.keys(s.definition.sink)[0]}`,
    ]),
  );
}

function showText(s: StreamView): string {
  const lines = [
    `stream ${s.name} (${s.origin.kind === "file" ? `${s.origin.file}:${s.origin.line}` : "API"})`,
    `  state      ${stateOf(s)}${s.reason === undefined ? "" : `: ${s.reason}`}`,
    `  capacity   ${s.capacity.currentCU} CU now, ${s.capacity.minCU} to ${s.capacity.maxCU}, billed by ${s.capacity.billing === "cu" ? "the CU-hour" : "event"}`,
    `  events     ${count(s.counters.eventsIn)} in, ${count(s.counters.eventsOut)} out, ${count(s.counters.eventsFiltered)} filtered, ${count(s.counters.eventsDeadLettered)} dead-lettered`,
    `  retries    ${count(s.counters.retries)}; throttled ${seconds(s.counters.throttledMs)} in all`,
    `  position   ${s.position ?? "(none saved)"}`,
  ];
  if (s.lastEventAtMs !== undefined) lines.push(`  last event ${isoSeconds(s.lastEventAtMs)}`);
  if (s.live !== undefined) {
    const live = s.live;
    lines.push(
      `  live       ${count(live.eventsPerSecond)} events/s, quota ${count(live.quota.eventsPerSecond)} events/s or ${count(live.quota.bytesPerSecond)} B/s${live.throttled ? ", throttled now" : ""}`,
      `             ${count(live.eventsInFlight)} in flight${live.backlog === undefined ? "" : `, ${count(live.backlog)} waiting at the source`}`,
    );
    if (live.lastError !== undefined) lines.push(`  last error ${isoSeconds(live.lastError.atMs)} ${live.lastError.message}`);
  }
  lines.push("  definition", indent(indent(prettyBody(JSON.stringify(s.definition)))));
  return lines.join("\n");
}

export function registerStreamsCommand(program: Command): void {
  const streams = program.command("streams").description("list, show, pause and resume event streams");

  streams
    .command("list")
    .description("every stream, as a table")
    .option("--json", "print the server's JSON")
    .option("--url <url>", URL_HELP)
    .action(async (flags: ServerFlags) => {
      const { streams: list } = (await callApi(flags.url, "GET", "/v1/streams")) as { streams: StreamView[] };
      if (flags.json === true) return void console.log(JSON.stringify(list, null, 2));
      console.log(list.length === 0 ? "no streams" : listTable(list));
    });

  streams
    .command("show")
    .description("one stream: state, capacity, counters, live figures, definition")
    .argument("<name>", "the stream's name")
    .option("--json", "print the server's JSON")
    .option("--url <url>", URL_HELP)
    .action(async (name: string, flags: ServerFlags) => {
      const stream = (await callApi(flags.url, "GET", `/v1/streams/${encodeURIComponent(name)}`)) as StreamView;
      console.log(flags.json === true ? JSON.stringify(stream, null, 2) : showText(stream));
    });

  for (const [verb, description] of [
    ["pause", "stop reading; what was not confirmed is read again on resume"],
    ["resume", "run again a paused stream, or a failed one, from its saved position"],
  ] as const) {
    streams
      .command(verb)
      .description(description)
      .argument("<name>", "the stream's name")
      .option("--url <url>", URL_HELP)
      .action(async (name: string, flags: ServerFlags) => {
        const stream = (await callApi(flags.url, "POST", `/v1/streams/${encodeURIComponent(name)}:${verb}`)) as StreamView;
        console.log(`stream ${stream.name}: ${stateOf(stream)}`);
      });
  }

  streams
    .command("capacity")
    .description("the stream's CU changes, newest first, with why")
    .argument("<name>", "the stream's name")
    .option("-n, --limit <n>", "how many at most", "50")
    .option("--json", "print the server's JSON")
    .option("--url <url>", URL_HELP)
    .action(async (name: string, flags: ServerFlags & { limit: string }) => {
      const answer = (await callApi(flags.url, "GET", `/v1/streams/${encodeURIComponent(name)}/capacity?limit=${encodeURIComponent(flags.limit)}`)) as {
        currentCU: number;
        changes: CuChange[];
      };
      if (flags.json === true) return void console.log(JSON.stringify(answer, null, 2));
      console.log(`${name}: ${answer.currentCU} CU now`);
      if (answer.changes.length > 0) {
        console.log(table(["AT", "CU", "WHY"], answer.changes.map((c) => [isoSeconds(c.atMs), `${c.fromCU} → ${c.toCU}`, c.reason])));
      }
    });

  for (const [verb, description] of [
    ["redrive", "send dead letters again through the running stream (ids, or --all)"],
    ["purge", "delete dead letters (ids, or --all)"],
  ] as const) {
    streams
      .command(verb)
      .description(description)
      .argument("<name>", "the stream's name")
      .argument("[ids...]", "dead letter ids (from `relaybus streams dead-letters NAME`)")
      .option("--all", "all of them (a redrive sends the oldest 1,000 at a time)")
      .option("--url <url>", URL_HELP)
      .action(async (name: string, ids: string[], flags: ServerFlags & { all?: boolean }) => {
        if ((flags.all === true) === ids.length > 0) throw new Error("give dead letter ids, or --all");
        const body = flags.all === true ? { all: true } : { ids: ids.map(Number) };
        const answer = (await callApi(flags.url, "POST", `/v1/streams/${encodeURIComponent(name)}/dead-letters:${verb}`, body)) as {
          redriven?: number;
          deadLetteredAgain?: number;
          more?: boolean;
          purged?: number;
        };
        if (verb === "purge") return void console.log(`${answer.purged ?? 0} dead letter(s) deleted`);
        const more = answer.more === true ? "; more wait: run it again" : "";
        console.log(`${answer.redriven ?? 0} dead letter(s) sent again, ${answer.deadLetteredAgain ?? 0} dead-lettered again${more}`);
      });
  }

  streams
    .command("dead-letters")
    .description("events the sink refused or that ran out of retries, oldest first")
    .argument("<name>", "the stream's name")
    .option("-n, --limit <n>", "how many at most", "50")
    .option("--json", "print the server's JSON")
    .option("--url <url>", URL_HELP)
    .action(async (name: string, flags: ServerFlags & { limit: string }) => {
      const { deadLetters } = (await callApi(
        flags.url,
        "GET",
        `/v1/streams/${encodeURIComponent(name)}/dead-letters?limit=${encodeURIComponent(flags.limit)}`,
      )) as { deadLetters: StreamDeadLetter[] };
      if (flags.json === true) return void console.log(JSON.stringify(deadLetters, null, 2));
      if (deadLetters.length === 0) return void console.log("no dead letters");
      console.log(
        table(
          ["ID", "AT", "EVENT", "ATTEMPTS", "REASON"],
          deadLetters.map((d) => [String(d.id), isoSeconds(d.failedAtMs), d.eventId, String(d.attempts), truncate(d.reason, 72)]),
        ),
      );
    });
}
