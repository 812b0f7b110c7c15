/**
 * A statement's line items as CSV (RFC 4180: comma separated, CRLF line ends, fields with
 * a comma, quote or line break quoted, quotes doubled), one row per line item, amounts as
 * their exact decimal text. A spreadsheet's total of the `amount` column is the period's
 * total.
 */
import type { BillingLineView } from "./billing-view.js";

/** The columns, in order. */
export const BILLING_CSV_COLUMNS = [
  "period",
  "line",
  "usage_period",
  "resource_kind",
  "resource",
  "bus",
  "rule",
  "target",
  "stream",
  "tenant",
  "meter",
  "quantity",
  "units",
  "unit_price",
  "price_basis",
  "amount",
  "currency",
] as const;

/** The CSV text of `statement`'s line items, with a header row. */
export function billingCsv(statement: {
  period: string;
  lineItems: readonly BillingLineView[];
}): string {
  const rows = statement.lineItems.map((l) => [
    statement.period,
    String(l.line),
    l.usagePeriod,
    l.resourceKind,
    l.resource,
    l.bus,
    l.rule,
    l.target,
    l.stream,
    l.tenant,
    l.meter,
    String(l.quantity),
    String(l.units),
    l.unitPrice,
    l.priceBasis,
    l.amount,
    l.currency,
  ]);
  return [[...BILLING_CSV_COLUMNS], ...rows]
    .map((row) => `${row.map(csvField).join(",")}\r\n`)
    .join("");
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
