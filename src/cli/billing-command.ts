/**
 * `relaybus billing`: billing records of a running Relaybus, over its HTTP API (`--url`,
 * `RELAYBUS_URL`, default http://127.0.0.1:8080).
 *
 *     relaybus billing                       # this month's line items and totals (a preview)
 *     relaybus billing --period 2026-04      # a month's
 *     relaybus billing --period 2026-04 --csv > april.csv
 *     relaybus billing --period 2026-04 --html april.html
 *     relaybus billing --list                # every period, with its state and total
 *     relaybus billing --period 2026-04 --close
 *
 * Exit status 1 when the server refuses a request (its code and message are printed).
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { clientUrl } from "../config/load-config.js";
import { periodOf } from "../metering/billing-calendar.js";
import type { BillingPeriodView, BillingStatementView } from "../metering/billing-view.js";
import { renderBillingReport } from "../metering/html-report.js";

interface BillingFlags {
  period?: string;
  csv?: boolean;
  html?: string;
  list?: boolean;
  close?: boolean;
  json?: boolean;
  url?: string;
}

const URL_HELP = "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)";

export function registerBillingCommand(program: Command): void {
  program
    .command("billing")
    .description(
      "print a billing period's line items and totals, as a table, CSV, JSON or an HTML report",
    )
    .option("--period <YYYY-MM>", "the billing period, a month in UTC (default: the current one)")
    .option("--csv", "print the line items as CSV")
    .option(
      "--html <file>",
      "write a self-contained HTML report (totals, daily charts, top resources) to <file>",
    )
    .option("--json", "print the server's JSON")
    .option("--list", "list the periods: closed ones, and open ones with a preview total")
    .option("--close", "close --period now (an ended month); a closed period is left as it is")
    .option("--url <url>", URL_HELP)
    .action(async (flags: BillingFlags) => {
      const period = flags.period ?? periodOf(Date.now()).period;
      const path = `/v1/billing/periods/${encodeURIComponent(period)}`;
      if (flags.list === true) {
        const { periods } = JSON.parse(await call(flags, "GET", "/v1/billing/periods")) as {
          periods: BillingPeriodView[];
        };
        console.log(flags.json === true ? JSON.stringify(periods, null, 2) : periodsTable(periods));
        return;
      }
      if (flags.close === true) {
        if (flags.period === undefined)
          throw new Error("billing --close: give the month with --period YYYY-MM");
        const answer = JSON.parse(await call(flags, "POST", `${path}:close`)) as {
          closed: boolean;
          period: BillingPeriodView;
        };
        const p = answer.period;
        console.log(
          answer.closed
            ? `period ${p.period} closed: ${p.lineItems} line items, total ${p.total} ${p.currency}`
            : `period ${p.period} was closed already (${p.closedAt ?? ""}): total ${p.total} ${p.currency}`,
        );
        return;
      }
      if (flags.csv === true) {
        process.stdout.write(await call(flags, "GET", `${path}/records?format=csv`));
        return;
      }
      const statement = JSON.parse(
        await call(flags, "GET", `${path}/records`),
      ) as BillingStatementView;
      if (flags.html !== undefined) {
        const html = renderBillingReport(statement, {
          generatedAt: new Date(),
          source: clientUrl(flags.url),
        });
        writeFileSync(flags.html, html);
        console.log(
          `wrote ${flags.html}: period ${statement.period} (${statement.preview ? "preview" : "closed"}), total ${statement.totals.total} ${statement.currency}`,
        );
        return;
      }
      console.log(
        flags.json === true ? JSON.stringify(statement, null, 2) : statementText(statement),
      );
    });
}

/** The line items and the totals, as tables. */
export function statementText(s: BillingStatementView): string {
  const state = s.preview
    ? "open (preview: amounts may still grow)"
    : `closed ${s.closedAt ?? ""}`.trim();
  const lines = table(
    ["#", "METER", "RESOURCE", "TENANT", "QUANTITY", "UNITS", "UNIT PRICE", "AMOUNT", "NOTE"],
    s.lineItems.map((l) => [
      String(l.line),
      l.meter,
      l.resource === "" ? `(${l.resourceKind})` : `${l.resourceKind} ${l.resource}`,
      l.tenant,
      String(l.quantity),
      String(l.units),
      `${l.unitPrice} ${l.priceBasis}`,
      l.amount,
      l.usagePeriod === s.period ? "" : `late, from ${l.usagePeriod}`,
    ]),
    new Set([0, 4, 5, 7]),
  );
  const byMeter = table(
    ["METER", "UNITS", "AMOUNT"],
    s.totals.byMeter.map((t) => [t.meter, String(t.units), t.amount]),
    new Set([1, 2]),
  );
  const byBus = table(
    ["BUS", "AMOUNT"],
    s.totals.byBus.map((t) => [t.bus, t.amount]),
    new Set([1]),
  );
  const byTenant = table(
    ["TENANT", "AMOUNT"],
    s.totals.byTenant.map((t) => [t.tenant === "" ? "(none)" : t.tenant, t.amount]),
    new Set([1]),
  );
  const byStream = table(
    ["STREAM", "AMOUNT"],
    s.totals.byStream.map((t) => [t.stream, t.amount]),
    new Set([1]),
  );
  return [
    `billing period ${s.period}: ${state}, amounts in ${s.currency}`,
    "",
    s.lineItems.length === 0 ? "no line items" : lines,
    "",
    byMeter,
    "",
    byBus,
    "",
    byTenant,
    ...(s.totals.byStream.length === 0 ? [] : ["", byStream]),
    "",
    `TOTAL ${s.totals.total} ${s.currency}`,
  ].join("\n");
}

function periodsTable(periods: readonly BillingPeriodView[]): string {
  if (periods.length === 0) return "no billing periods";
  return table(
    ["PERIOD", "STATE", "LINE ITEMS", "TOTAL", "CURRENCY", "CLOSED"],
    periods.map((p) => [
      p.period,
      p.preview ? `${p.state} (preview)` : p.state,
      String(p.lineItems),
      p.total,
      p.currency,
      p.closedAt ?? "",
    ]),
    new Set([2, 3]),
  );
}

/** Columns padded to their widest cell; the columns in `right` aligned right. */
function table(
  header: readonly string[],
  rows: readonly string[][],
  right: ReadonlySet<number>,
): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) =>
        right.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** One request to the server; an error answer becomes an Error with its code and message. */
async function call(flags: BillingFlags, method: string, path: string): Promise<string> {
  const base = clientUrl(flags.url);
  const response = await fetch(`${base}${path}`, { method }).catch((error: unknown) => {
    throw new Error(`cannot reach Relaybus at ${base}: ${String((error as Error).cause ?? error)}`);
  });
  const text = await response.text();
  if (!response.ok) {
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      error = undefined;
    }
    throw new Error(
      error === undefined
        ? `${method} ${path}: HTTP ${response.status} ${text}`
        : `${error.code}: ${error.message}`,
    );
  }
  return text;
}
