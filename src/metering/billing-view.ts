/**
 * Billing statements and periods as the API shows them (JSON), and as the CLI and the HTML
 * report read them back: times as RFC 3339, days as `YYYY-MM-DD`, amounts as decimal text.
 */
import type { BillingPeriodState, BillingResourceKind, PriceBasis } from "../log/billing-store.js";
import { dateOf } from "./billing-calendar.js";
import type { BillingStatement, PeriodSummary } from "./billing-period.js";
import type { BillingTotals } from "./billing-totals.js";

/** A period as listed by `GET /v1/billing/periods`. */
export interface BillingPeriodView {
  period: string;
  /** RFC 3339 bounds: from (inclusive) to (exclusive). */
  from: string;
  to: string;
  state: BillingPeriodState;
  /** True when the total is computed now (the period is open). */
  preview: boolean;
  closedAt?: string;
  currency: string;
  total: string;
  lineItems: number;
}

/** One line item as `GET /v1/billing/periods/{period}/records` shows it. */
export interface BillingLineView {
  line: number;
  usagePeriod: string;
  resourceKind: BillingResourceKind;
  resource: string;
  bus: string;
  rule: string;
  target: string;
  stream: string;
  tenant: string;
  meter: string;
  quantity: number;
  units: number;
  unitPrice: string;
  priceBasis: PriceBasis;
  amount: string;
  currency: string;
}

/** A meter's usage on one day. */
export interface DailyUsageView {
  /** `YYYY-MM-DD` (UTC). */
  date: string;
  meter: string;
  quantity: number;
  units: number;
}

/** A period's records: `GET /v1/billing/periods/{period}/records`. */
export interface BillingStatementView {
  period: string;
  from: string;
  to: string;
  state: BillingPeriodState;
  preview: boolean;
  closedAt?: string;
  currency: string;
  lineItems: BillingLineView[];
  totals: BillingTotals;
  dailyUsage: DailyUsageView[];
}

export function toPeriodView(p: PeriodSummary): BillingPeriodView {
  return {
    period: p.period,
    from: new Date(p.fromMs).toISOString(),
    to: new Date(p.toMs).toISOString(),
    state: p.state,
    preview: p.preview,
    ...(p.closedAtMs === undefined ? {} : { closedAt: new Date(p.closedAtMs).toISOString() }),
    currency: p.currency,
    total: p.total,
    lineItems: p.lineItems,
  };
}

export function toStatementView(s: BillingStatement): BillingStatementView {
  return {
    period: s.period,
    from: new Date(s.fromMs).toISOString(),
    to: new Date(s.toMs).toISOString(),
    state: s.state,
    preview: s.preview,
    ...(s.closedAtMs === undefined ? {} : { closedAt: new Date(s.closedAtMs).toISOString() }),
    currency: s.currency,
    lineItems: s.lineItems.map((l) => ({
      line: l.line,
      usagePeriod: l.usagePeriod,
      resourceKind: l.resourceKind,
      resource: l.resource,
      bus: l.bus,
      rule: l.rule,
      target: l.target,
      stream: l.stream,
      tenant: l.tenant,
      meter: l.meter,
      quantity: l.quantity,
      units: l.units,
      unitPrice: l.unitPrice,
      priceBasis: l.priceBasis,
      amount: l.amount,
      currency: l.currency,
    })),
    totals: s.totals,
    dailyUsage: s.dailyUsage.map((d) => ({
      date: dateOf(d.dayMs),
      meter: d.meter,
      quantity: d.quantity,
      units: d.units,
    })),
  };
}
