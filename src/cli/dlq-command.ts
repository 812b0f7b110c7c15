/**
 * `relaybus dlq list|show|redrive|purge`: the dead letters of a running Relaybus, over its
 * HTTP API (`--url`, `RELAYBUS_URL`, default http://127.0.0.1:8080).
 *
 *     relaybus dlq list --bus orders --reason "HTTP 500" --since 2h
 *     relaybus dlq show 6f0c...        # payload and every attempt
 *     relaybus dlq redrive 6f0c... 81aa... | --all | --rule big-orders [--mode current]
 *     relaybus dlq purge --target fulfil --yes
 *
 * Exit status 1 when the server refuses the request, when a redrive skipped a dead letter or
 * an id was not found, and when a purge was not confirmed.
 */
import type { Command } from "commander";
import { createInterface } from "node:readline/promises";
import { callApi } from "./api-client.js";
import { indent, isoSeconds, prettyBody, table, truncate } from "./text-format.js";
import type { DeadLetter } from "../log/log-engine.js";

interface ServerFlags {
  url?: string;
}

interface FilterFlags extends ServerFlags {
  bus?: string;
  rule?: string;
  target?: string;
  reason?: string;
  since?: string;
  until?: string;
}

interface ListFlags extends FilterFlags {
  limit: string;
  json?: boolean;
}

interface SelectFlags extends FilterFlags {
  all?: boolean;
}

/** The widest a reason is shown in `dlq list`; `dlq show` has it whole. */
const REASON_COLUMN_CHARS = 72;

const SINCE_HELP =
  "dead-lettered at or after: a duration ago (90s, 15m, 2h, 7d) or a time (RFC 3339 or ms since the epoch)";

export function registerDlqCommand(program: Command): void {
  const dlq = program.command("dlq").description("list, show, redrive and purge dead letters");

  withFilters(dlq.command("list").description("list dead letters, newest first, as a table"))
    .option("-n, --limit <n>", "how many at most (1 to 1000)", "50")
    .option("--json", "print the server's JSON instead of a table")
    .action(async (flags: ListFlags) => {
      const query = new URLSearchParams(filterOf(flags));
      query.set("limit", flags.limit);
      const { deadLetters } = (await callApi(flags.url, "GET", `/v1/dead-letters?${query}`)) as {
        deadLetters: DeadLetter[];
      };
      if (flags.json === true) {
        console.log(JSON.stringify(deadLetters, null, 2));
        return;
      }
      if (deadLetters.length === 0) {
        console.log("no dead letters");
        return;
      }
      console.log(listTable(deadLetters));
      const more =
        deadLetters.length === Number(flags.limit) ? " (the limit: there may be more)" : "";
      console.log(`\n${deadLetters.length} dead letter(s)${more}`);
    });

  dlq
    .command("show")
    .description("show one dead letter: where it came from, its payload and every attempt")
    .argument("<id>", "the dead letter's id (its delivery id, the webhook-id)")
    .option("--json", "print the server's JSON")
    .option("--url <url>", "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)")
    .action(async (id: string, flags: ServerFlags & { json?: boolean }) => {
      const letter = (await callApi(
        flags.url,
        "GET",
        `/v1/dead-letters/${encodeURIComponent(id)}`,
      )) as DeadLetter;
      console.log(flags.json === true ? JSON.stringify(letter, null, 2) : showText(letter));
    });

  withSelection(
    dlq
      .command("redrive")
      .description("send dead letters again: the ones named, those a filter selects, or --all"),
  )
    .option(
      "--mode <mode>",
      "original: the request as it was; current: rebuilt with the target's current definition",
      "original",
    )
    .action(async (ids: string[], flags: SelectFlags & { mode: string }) => {
      const body = { ...selectorOf(ids, flags), mode: flags.mode };
      const result = (await callApi(flags.url, "POST", "/v1/dead-letters:redrive", body)) as {
        redriven: number;
        skipped: number;
        skips: { id: string; reason: string }[];
        notFound?: string[];
      };
      console.log(`redriven ${result.redriven}, skipped ${result.skipped} (mode ${flags.mode})`);
      for (const skip of result.skips) console.log(`skipped ${skip.id}: ${skip.reason}`);
      if (result.skipped > result.skips.length)
        console.log(`... and ${result.skipped - result.skips.length} more skipped`);
      for (const id of result.notFound ?? []) console.log(`not found: ${id}`);
      if (result.skipped > 0 || (result.notFound?.length ?? 0) > 0) process.exitCode = 1;
    });

  withSelection(
    dlq
      .command("purge")
      .description(
        "delete dead letters for good: the ones named, those a filter selects, or --all",
      ),
  )
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (ids: string[], flags: SelectFlags & { yes?: boolean }) => {
      const body = selectorOf(ids, flags);
      if (
        flags.yes !== true &&
        !(await confirm(`Purge ${describeSelector(ids, flags)}? This cannot be undone. [y/N] `))
      ) {
        console.error(
          "dlq purge: not confirmed; nothing purged (pass --yes to purge without asking)",
        );
        process.exitCode = 1;
        return;
      }
      const result = (await callApi(flags.url, "POST", "/v1/dead-letters:purge", body)) as {
        purged: number;
        notFound?: string[];
      };
      console.log(`purged ${result.purged}`);
      for (const id of result.notFound ?? []) console.log(`not found: ${id}`);
      if ((result.notFound?.length ?? 0) > 0) process.exitCode = 1;
    });
}

function withFilters(command: Command): Command {
  return command
    .option("-b, --bus <name>", "only this bus")
    .option("-r, --rule <name>", "only this rule")
    .option("-t, --target <id>", "only this target id")
    .option("--reason <text>", 'reason contains this text (ignoring case), e.g. "HTTP 500"')
    .option("--since <when>", SINCE_HELP)
    .option("--until <when>", "dead-lettered at or before: like --since")
    .option("--url <url>", "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)");
}

function withSelection(command: Command): Command {
  return withFilters(command.argument("[ids...]", "dead letter ids")).option(
    "--all",
    "every dead letter",
  );
}

/** The filter flags as the API's field names (query parameters or `filter`). */
function filterOf(flags: FilterFlags): Record<string, string> {
  const filter: Record<string, string> = {};
  if (flags.bus !== undefined) filter.bus = flags.bus;
  if (flags.rule !== undefined) filter.rule = flags.rule;
  if (flags.target !== undefined) filter.target = flags.target;
  if (flags.reason !== undefined) filter.reason = flags.reason;
  if (flags.since !== undefined) filter.from = String(parseWhen(flags.since, "--since"));
  if (flags.until !== undefined) filter.to = String(parseWhen(flags.until, "--until"));
  return filter;
}

/** The body's selector: ids, a filter, or all; exactly one (the server refuses none). */
function selectorOf(ids: string[], flags: SelectFlags): Record<string, unknown> {
  const filter = filterOf(flags);
  const given = [ids.length > 0, Object.keys(filter).length > 0, flags.all === true].filter(
    Boolean,
  ).length;
  if (given === 0)
    throw new Error(
      "dlq: name dead letter ids, give filters (--bus, --rule, --target, --reason, --since, --until), or --all",
    );
  if (given > 1) throw new Error("dlq: give ids, filters or --all, not several");
  if (ids.length > 0) return { ids };
  if (flags.all === true) return { all: true };
  return { filter };
}

function describeSelector(ids: string[], flags: SelectFlags): string {
  if (flags.all === true) return "every dead letter";
  if (ids.length > 0) return `${ids.length} dead letter(s)`;
  const filter = Object.entries(filterOf(flags)).map(([k, v]) => `${k}=${v}`);
  return `the dead letters with ${filter.join(", ")}`;
}

/** `90s`, `15m`, `2h`, `7d` ago, or a time the server reads itself (ms or RFC 3339). */
export function parseWhen(text: string, flag: string, nowMs = Date.now()): number | string {
  const duration = /^(\d+)(s|m|h|d)$/.exec(text);
  if (duration !== null) {
    const unitMs = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
      duration[2] as "s" | "m" | "h" | "d"
    ];
    return nowMs - Number(duration[1]) * unitMs;
  }
  if (/^\d+$/.test(text) || /^\d{4}-\d{2}-\d{2}/.test(text)) return text;
  throw new Error(
    `${flag}: expected a duration such as 2h or 7d, or a time, got ${JSON.stringify(text)}`,
  );
}

async function confirm(question: string): Promise<boolean> {
  if (process.stdin.isTTY !== true) return false; // no one to ask: --yes is required
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function listTable(letters: readonly DeadLetter[]): string {
  const rows = letters.map((l) => [
    l.id,
    isoSeconds(l.deadAtMs),
    l.bus,
    l.rule,
    l.targetId,
    String(l.attempts.length),
    truncate(l.reason, REASON_COLUMN_CHARS),
  ]);
  return table(["ID", "DEAD AT", "BUS", "RULE", "TARGET", "ATTEMPTS", "REASON"], rows);
}

function showText(l: DeadLetter): string {
  const lines = [
    `dead letter ${l.id}`,
    `  bus:       ${l.bus}`,
    `  rule:      ${l.rule}`,
    `  target:    ${l.targetId}`,
    `  event:     ${l.eventId} (offset ${l.offset}, received ${isoSeconds(l.eventReceivedAtMs)})`,
    `  dead at:   ${isoSeconds(l.deadAtMs)}`,
    `  reason:    ${l.reason}`,
    `  retry:     maxAttempts ${l.retry.maxAttempts}, maxAgeSeconds ${l.retry.maxAgeSeconds}` +
      (l.retry.spentBeforeRedrive === undefined
        ? ""
        : ` (redriven after ${l.retry.spentBeforeRedrive.attempts} attempts)`),
    "",
    `request: POST ${l.request.url} (timeout ${l.request.timeoutMs} ms)`,
    ...Object.entries(l.request.headers).map(([name, value]) => `  ${name}: ${value}`),
    "",
    "payload:",
    indent(prettyBody(l.request.body)),
    "",
    `attempts (${l.attempts.length}):`,
  ];
  if (l.attempts.length === 0) {
    lines.push("  none (dead-lettered before its first attempt)");
  } else {
    const rows = l.attempts.map((a) => [
      String(a.attempt),
      isoSeconds(a.startedAtMs),
      a.status === undefined ? "-" : String(a.status),
      a.outcome,
      `${Math.round(a.durationMs)} ms`,
      a.error ?? "",
    ]);
    lines.push(indent(table(["#", "STARTED", "STATUS", "OUTCOME", "DURATION", "ERROR"], rows)));
  }
  return lines.join("\n");
}
