/**
 * `relaybus usage`: the usage a running Relaybus has metered, as a table, over its HTTP API
 * (`GET /v1/usage`; `--url`, `RELAYBUS_URL`, default http://127.0.0.1:8080).
 *
 *     relaybus usage                                  # the last 24 hours, per hour and meter
 *     relaybus usage --from 7d --granularity day --group-by bus,meter
 *     relaybus usage --from 2025-01-01 --to 2025-02-01 --granularity day --csv > january.csv
 *
 * Exit status 1 when the server refuses the request (a bad parameter, a report too large).
 */
import type { Command } from "commander";
import type { UsageDimension, UsageRow, UsageTotal } from "../log/usage-store.js";
import { usageCsv } from "../metering/usage-csv.js";
import { callApi } from "./api-client.js";
import { isoSeconds, table } from "./text-format.js";

interface UsageFlags {
  from?: string;
  to?: string;
  groupBy?: string;
  granularity?: string;
  csv?: boolean;
  json?: boolean;
  url?: string;
}

/** The answer of `GET /v1/usage`. */
interface UsageAnswer {
  from: string;
  to: string;
  granularity: string;
  groupBy: UsageDimension[];
  rows: (Omit<UsageRow, "startMs"> & { start: string })[];
  totals: UsageTotal[];
}

const WHEN_HELP = "a duration ago (90m, 24h, 7d), a date (2025-01-31) or an RFC 3339 time";

export function registerUsageCommand(program: Command): void {
  program
    .command("usage")
    .description("show metered usage (publishes, pushes, replays, redrives) per hour or day, as a table")
    .option("--from <when>", `start of the report: ${WHEN_HELP} (default 24h ago by hour, 30d by day)`)
    .option("--to <when>", `end of the report, exclusive: ${WHEN_HELP} (default now)`)
    .option("--group-by <dims>", "comma-separated: bus, rule, target, stream, meter", "meter")
    .option("--granularity <g>", "hour or day", "hour")
    .option("--csv", "print CSV (a header row, then one row per bucket)")
    .option("--json", "print the server's JSON")
    .option("--url <url>", "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)")
    .action(async (flags: UsageFlags) => {
      const query = new URLSearchParams();
      if (flags.from !== undefined) query.set("from", parseWhen(flags.from, "--from"));
      if (flags.to !== undefined) query.set("to", parseWhen(flags.to, "--to"));
      if (flags.groupBy !== undefined) query.set("groupBy", flags.groupBy);
      if (flags.granularity !== undefined) query.set("granularity", flags.granularity);
      const answer = (await callApi(flags.url, "GET", `/v1/usage?${query}`)) as UsageAnswer;
      if (flags.json === true) {
        console.log(JSON.stringify(answer, null, 2));
        return;
      }
      if (flags.csv === true) {
        const rows = answer.rows.map(({ start, ...rest }) => ({ startMs: Date.parse(start), ...rest }));
        process.stdout.write(usageCsv(rows, answer.groupBy));
        return;
      }
      console.log(usageText(answer));
    });
}

/** The report as a table, then its totals per meter. */
function usageText(answer: UsageAnswer): string {
  const span = `${answer.from} to ${answer.to}, by ${answer.granularity}`;
  if (answer.rows.length === 0) return `no usage from ${span}`;
  const header = ["START", ...answer.groupBy.map((d) => d.toUpperCase()), "QUANTITY", "UNITS"];
  const rows = answer.rows.map((row) => [
    isoSeconds(Date.parse(row.start)),
    ...answer.groupBy.map((d) => row[d] ?? "-"),
    String(row.quantity),
    String(row.units),
  ]);
  const totals = table(
    ["METER", "QUANTITY", "UNITS"],
    answer.totals.map((t) => [t.meter, String(t.quantity), String(t.units)]),
  );
  return `${table(header, rows)}\n\nusage from ${span}; totals:\n${totals}`;
}

/** `90m`, `24h`, `7d` ago as an RFC 3339 time; anything else as given (the server checks it). */
export function parseWhen(text: string, flag: string, nowMs = Date.now()): string {
  const duration = /^(\d+)(s|m|h|d)$/.exec(text);
  if (duration === null) {
    if (/^\d{4}-\d{2}-\d{2}/.test(text)) return text;
    throw new Error(`${flag}: expected ${WHEN_HELP}, got ${JSON.stringify(text)}`);
  }
  const unitMs = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2] as "s" | "m" | "h" | "d"];
  return new Date(nowMs - Number(duration[1]) * unitMs).toISOString();
}
