/**
 * The daily usage chart of one meter, as inline SVG: one bar (`rect`) per day of the
 * period, days without usage included (a bar of height 0), each with a `<title>` a browser
 * shows on hover. No script, no external font: it renders offline, and prints.
 */
import { escapeHtml } from "./html-report-escape.js";

/** One day's value of the chart. */
export interface ChartDay {
  /** `YYYY-MM-DD`. */
  date: string;
  value: number;
}

const WIDTH = 720;
const HEIGHT = 170;
const LEFT = 56;
const RIGHT = 8;
const TOP = 12;
const BOTTOM = 26;

/**
 * The SVG of `days` for `meter`, values counted in `unit` (`units`, `CU-hours`, `days`).
 * Bars are scaled to the largest value; the axis shows 0, that value, and the first,
 * middle and last dates.
 */
export function renderUsageChart(
  meter: string,
  unit: string,
  days: readonly ChartDay[],
  color: string,
): string {
  const max = Math.max(0, ...days.map((d) => d.value));
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const slot = days.length === 0 ? plotWidth : plotWidth / days.length;
  const barWidth = Math.max(1, slot * 0.72);
  const bars = days.map((day, index) => {
    const height = max === 0 ? 0 : (day.value / max) * plotHeight;
    const x = LEFT + index * slot + (slot - barWidth) / 2;
    const y = TOP + plotHeight - height;
    return (
      `<rect class="bar" data-date="${escapeHtml(day.date)}" data-value="${day.value}" ` +
      `x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${barWidth.toFixed(2)}" height="${height.toFixed(2)}" ` +
      `fill="${escapeHtml(color)}"><title>${escapeHtml(`${day.date}: ${formatCount(day.value)} ${unit}`)}</title></rect>`
    );
  });
  const labels = [0, Math.floor((days.length - 1) / 2), days.length - 1]
    .filter((index, position, all) => index >= 0 && all.indexOf(index) === position)
    .map((index) => {
      // The first and last labels hang inward from their bar, so the edges do not clip them.
      const anchor = index === 0 ? "start" : index === days.length - 1 ? "end" : "middle";
      const x =
        anchor === "start"
          ? LEFT + index * slot
          : anchor === "end"
            ? LEFT + (index + 1) * slot
            : LEFT + index * slot + slot / 2;
      return `<text x="${x.toFixed(2)}" y="${HEIGHT - 8}" text-anchor="${anchor}">${escapeHtml(days[index]?.date ?? "")}</text>`;
    });
  const baseline = TOP + plotHeight;
  return [
    `<svg class="chart" data-meter="${escapeHtml(meter)}" role="img" aria-label="${escapeHtml(`${meter}: ${unit} per day`)}" `,
    `viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" xmlns="http://www.w3.org/2000/svg">`,
    `<line x1="${LEFT}" y1="${baseline}" x2="${WIDTH - RIGHT}" y2="${baseline}" class="axis"/>`,
    `<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${baseline}" class="axis"/>`,
    `<text x="${LEFT - 6}" y="${TOP + 4}" text-anchor="end">${escapeHtml(formatCount(max))}</text>`,
    `<text x="${LEFT - 6}" y="${baseline}" text-anchor="end">0</text>`,
    ...bars,
    ...labels,
    "</svg>",
  ].join("");
}

/** A count with thousands separators, at most three decimals (CU-hours). */
export function formatCount(value: number): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}
