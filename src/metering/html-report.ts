/**
 * The billing report as one self-contained HTML page (`relaybus billing --html FILE`): the
 * period's totals (overall, per meter, bus, tenant and stream), a daily usage chart per
 * meter (inline SVG), the top resources by amount, and every line item. A pure function of
 * the statement the API serves: no script, no external stylesheet, font or image, so the
 * file opens offline, in a mail attachment, or printed. Every string from the data is
 * escaped.
 *
 * Elements a test (or a scraper) may look for carry data attributes: `[data-total]` holds
 * the period's total, `[data-meter-total="publish"]` a meter's, and each chart is an
 * `svg[data-meter]` with one `rect.bar[data-date]` per day.
 */
import { DAY_MS } from "./billing-calendar.js";
import type { BillingStatementView, DailyUsageView } from "./billing-view.js";
import type { AmountTotal } from "./billing-totals.js";
import { formatCount, renderUsageChart, type ChartDay } from "./html-report-chart.js";
import { escapeHtml } from "./html-report-escape.js";

/** Options of {@link renderBillingReport}. */
export interface BillingReportOptions {
  /** When the report was made, shown in its footer. */
  generatedAt: Date;
  /** The server it came from, shown in its footer. */
  source?: string;
  /** How many resources the "top resources" table shows. Default 10. */
  topResources?: number;
}

/** One colour per meter, in order of the meters' names; they repeat past eight. */
const PALETTE = [
  "#2f6fde",
  "#e07b24",
  "#2aa876",
  "#c2417a",
  "#7a5bd6",
  "#b8962e",
  "#3a9fb5",
  "#6b7280",
];

/** The report's page, as HTML text. */
export function renderBillingReport(
  statement: BillingStatementView,
  options: BillingReportOptions,
): string {
  const { currency } = statement;
  const title = `Relaybus billing — ${statement.period}`;
  const meters = metersOf(statement);
  const colors = new Map(meters.map((meter, i) => [meter, PALETTE[i % PALETTE.length]!]));
  const state = statement.preview
    ? "Preview — the period is open; amounts may still grow"
    : "Closed — final";

  const body = [
    `<header><h1>${escapeHtml(title)}</h1>`,
    `<p class="meta"><span class="badge ${statement.preview ? "open" : "closed"}">${escapeHtml(state)}</span> `,
    `${escapeHtml(dateOfIso(statement.from))} to ${escapeHtml(lastDayOf(statement.to))} (UTC)`,
    statement.closedAt === undefined ? "" : ` · closed ${escapeHtml(statement.closedAt)}`,
    `</p></header>`,
    `<section class="cards">`,
    card(
      "Total",
      `<span data-total>${escapeHtml(statement.totals.total)}</span> ${escapeHtml(currency)}`,
    ),
    card("Line items", escapeHtml(String(statement.lineItems.length))),
    card("Meters", escapeHtml(String(statement.totals.byMeter.length))),
    card("Buses", escapeHtml(String(statement.totals.byBus.length))),
    `</section>`,
    `<section><h2>Totals by meter</h2>`,
    totalsTable(
      "Meter",
      statement.totals.byMeter.map((t) => ({
        name: t.meter,
        total: t,
        attribute: `data-meter-total="${escapeHtml(t.meter)}"`,
      })),
      currency,
      colors,
    ),
    `</section>`,
    `<section><h2>Daily usage</h2>`,
    meters.length === 0 ? `<p class="empty">No usage in this period.</p>` : "",
    ...meters.map((meter) => {
      const { unit, days } = chartDays(statement, meter);
      return (
        `<figure><figcaption><span class="swatch" style="background:${colors.get(meter)}"></span>` +
        `${escapeHtml(meter)} <span class="unit">(${escapeHtml(unit)} per day)</span></figcaption>` +
        `${renderUsageChart(meter, unit, days, colors.get(meter)!)}</figure>`
      );
    }),
    `</section>`,
    `<section class="columns">`,
    `<div><h2>By bus</h2>${totalsTable(
      "Bus",
      statement.totals.byBus.map((t) => ({ name: t.bus, total: t })),
      currency,
    )}</div>`,
    `<div><h2>By tenant</h2>${totalsTable(
      "Tenant",
      statement.totals.byTenant.map((t) => ({
        name: t.tenant === "" ? "(no tenant)" : t.tenant,
        total: t,
      })),
      currency,
    )}</div>`,
    statement.totals.byStream.length === 0
      ? ""
      : `<div><h2>By stream</h2>${totalsTable(
          "Stream",
          statement.totals.byStream.map((t) => ({ name: t.stream, total: t })),
          currency,
        )}</div>`,
    `</section>`,
    `<section><h2>Top resources</h2>${topResources(statement, options.topResources ?? 10)}</section>`,
    `<section><h2>Line items</h2>${lineItems(statement)}</section>`,
    `<footer>Generated ${escapeHtml(options.generatedAt.toISOString())}`,
    options.source === undefined ? "" : ` from ${escapeHtml(options.source)}`,
    `. Amounts are rounded half to even to the currency's minor unit once per line item; totals are exact sums of the rounded lines. `,
    `Event meters are priced per million 64 KB units.</footer>`,
  ].join("");

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** The meters of the period: those with usage or line items, by name. */
function metersOf(statement: BillingStatementView): string[] {
  const meters = new Set<string>();
  for (const d of statement.dailyUsage) meters.add(d.meter);
  for (const l of statement.lineItems) meters.add(l.meter);
  return [...meters].sort();
}

/**
 * A meter's chart values for every day of the period: 64 KB units for event meters,
 * CU-hours for `stream-cu-hours` (the meter counts CU-milli-hours), days for `stream-idle`.
 */
function chartDays(
  statement: BillingStatementView,
  meter: string,
): { unit: string; days: ChartDay[] } {
  const basis =
    statement.lineItems.find((l) => l.meter === meter)?.priceBasis ?? basisByName(meter);
  const valueOf = (d: DailyUsageView) =>
    basis === "per-cu-hour" ? d.quantity / 1_000 : basis === "per-day" ? d.quantity : d.units;
  const byDate = new Map(
    statement.dailyUsage.filter((d) => d.meter === meter).map((d) => [d.date, valueOf(d)]),
  );
  const days: ChartDay[] = [];
  for (let day = Date.parse(statement.from); day < Date.parse(statement.to); day += DAY_MS) {
    const date = new Date(day).toISOString().slice(0, 10);
    days.push({ date, value: byDate.get(date) ?? 0 });
  }
  return {
    unit: basis === "per-cu-hour" ? "CU-hours" : basis === "per-day" ? "idle days" : "units",
    days,
  };
}

function basisByName(meter: string): string {
  return meter === "stream-cu-hours"
    ? "per-cu-hour"
    : meter === "stream-idle"
      ? "per-day"
      : "per-million-units";
}

function card(label: string, valueHtml: string): string {
  return `<div class="card"><div class="label">${escapeHtml(label)}</div><div class="value">${valueHtml}</div></div>`;
}

function totalsTable(
  heading: string,
  rows: readonly { name: string; total: AmountTotal; attribute?: string }[],
  currency: string,
  colors?: ReadonlyMap<string, string>,
): string {
  if (rows.length === 0) return `<p class="empty">None.</p>`;
  const body = rows
    .map((r) => {
      const swatch = colors?.get(r.name);
      return (
        `<tr><td>${swatch === undefined ? "" : `<span class="swatch" style="background:${swatch}"></span>`}${escapeHtml(r.name)}</td>` +
        `<td class="num">${escapeHtml(formatCount(r.total.units))}</td>` +
        `<td class="num"${r.attribute === undefined ? "" : ` ${r.attribute}`}>${escapeHtml(r.total.amount)}</td></tr>`
      );
    })
    .join("");
  return (
    `<table><thead><tr><th>${escapeHtml(heading)}</th><th class="num">Units</th>` +
    `<th class="num">Amount (${escapeHtml(currency)})</th></tr></thead><tbody>${body}</tbody></table>`
  );
}

function topResources(statement: BillingStatementView, count: number): string {
  const top = statement.totals.byResource.slice(0, count);
  if (top.length === 0) return `<p class="empty">None.</p>`;
  const largest = Number(top[0]!.amount) || 0;
  const rows = top
    .map((r) => {
      // The bar's width is drawing, not money: a float share is fine here.
      const share = largest === 0 ? 0 : (Number(r.amount) / largest) * 100;
      return (
        `<tr><td>${escapeHtml(r.resourceKind)}</td><td>${escapeHtml(r.resource === "" ? "(service)" : r.resource)}</td>` +
        `<td class="num">${escapeHtml(formatCount(r.units))}</td>` +
        `<td class="num">${escapeHtml(r.amount)}</td>` +
        `<td class="share"><span style="width:${share.toFixed(1)}%"></span></td></tr>`
      );
    })
    .join("");
  return (
    `<table class="top"><thead><tr><th>Kind</th><th>Resource</th><th class="num">Units</th>` +
    `<th class="num">Amount (${escapeHtml(statement.currency)})</th><th></th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

function lineItems(statement: BillingStatementView): string {
  if (statement.lineItems.length === 0) return `<p class="empty">No line items.</p>`;
  const rows = statement.lineItems
    .map(
      (l) =>
        `<tr><td class="num">${l.line}</td><td>${escapeHtml(l.meter)}</td><td>${escapeHtml(l.resourceKind)}</td>` +
        `<td>${escapeHtml(l.resource)}</td><td>${escapeHtml(l.tenant)}</td>` +
        `<td class="num">${escapeHtml(formatCount(l.quantity))}</td><td class="num">${escapeHtml(formatCount(l.units))}</td>` +
        `<td class="num">${escapeHtml(l.unitPrice)} <span class="unit">${escapeHtml(l.priceBasis)}</span></td>` +
        `<td class="num">${escapeHtml(l.amount)}</td>` +
        `<td>${l.usagePeriod === statement.period ? "" : `late, from ${escapeHtml(l.usagePeriod)}`}</td></tr>`,
    )
    .join("");
  return (
    `<table class="lines"><thead><tr><th class="num">#</th><th>Meter</th><th>Kind</th><th>Resource</th><th>Tenant</th>` +
    `<th class="num">Quantity</th><th class="num">Units</th><th class="num">Unit price</th>` +
    `<th class="num">Amount (${escapeHtml(statement.currency)})</th><th>Note</th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

function dateOfIso(iso: string): string {
  return iso.slice(0, 10);
}

/** The last day of a period whose end (exclusive) is `toIso`. */
function lastDayOf(toIso: string): string {
  return new Date(Date.parse(toIso) - DAY_MS).toISOString().slice(0, 10);
}

const STYLE = `
:root { color-scheme: light; --ink: #1f2430; --muted: #667085; --line: #e4e7ec; --panel: #f8f9fb; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 28px 32px 48px; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 10px; }
.meta { color: var(--muted); margin: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.open { background: #fff4e5; color: #9a4d00; }
.badge.closed { background: #e7f6ee; color: #146c43; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-top: 20px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; white-space: nowrap; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 24px; }
figure { margin: 0 0 14px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.unit { color: var(--muted); font-weight: 400; font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
svg.chart { width: 100%; height: auto; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
svg.chart text { font-size: 10px; fill: var(--muted); }
svg.chart .axis { stroke: #c7ccd6; stroke-width: 1; }
td.share { width: 28%; }
td.share span { display: block; height: 10px; background: #2f6fde; border-radius: 2px; opacity: .75; }
.empty { color: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@media print { body { padding: 0; } .card, svg.chart { break-inside: avoid; } }
`;
