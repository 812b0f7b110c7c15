/**
 * A usage report as CSV (RFC 4180: comma separated, CRLF line ends, fields with a comma,
 * quote or line break quoted, quotes doubled): a header row, then one row per report row.
 * Columns: `start` (ISO 8601, UTC), the dimensions grouped by in the report's order, then
 * `quantity` and `units`. A dimension a meter does not concern is an empty field.
 */
import type { UsageDimension, UsageRow } from "../log/usage-store.js";

/** The CSV text of `rows`, grouped by `dimensions`. */
export function usageCsv(rows: readonly UsageRow[], dimensions: readonly UsageDimension[]): string {
  const lines = [["start", ...dimensions, "quantity", "units"]];
  for (const row of rows) {
    lines.push([
      new Date(row.startMs).toISOString(),
      ...dimensions.map((d) => row[d] ?? ""),
      String(row.quantity),
      String(row.units),
    ]);
  }
  return lines.map((line) => `${line.map(csvField).join(",")}\r\n`).join("");
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
