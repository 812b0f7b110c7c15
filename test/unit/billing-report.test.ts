import assert from "node:assert/strict";
import { test } from "node:test";
import {
  daysOf,
  parsePeriod,
  periodOf,
  previousPeriod,
} from "../../src/metering/billing-calendar.js";
import { billingCsv } from "../../src/metering/billing-csv.js";
import { lateUsage, resourceOf } from "../../src/metering/billing-line-items.js";
import { totalsOf } from "../../src/metering/billing-totals.js";
import type { BillingLineView, BillingStatementView } from "../../src/metering/billing-view.js";
import { renderBillingReport } from "../../src/metering/html-report.js";
import { escapeHtml } from "../../src/metering/html-report-escape.js";

function line(overrides: Partial<BillingLineView>): BillingLineView {
  return {
    line: 1,
    usagePeriod: "2026-02",
    resourceKind: "bus",
    resource: "orders",
    bus: "orders",
    rule: "",
    target: "",
    stream: "",
    tenant: "",
    meter: "publish",
    quantity: 1,
    units: 1,
    unitPrice: "5.64",
    priceBasis: "per-million-units",
    amount: "0.00",
    currency: "CNY",
    ...overrides,
  };
}

test("billing calendar - months in UTC, leap years, and malformed names", () => {
  const feb = parsePeriod("2028-02");
  assert.equal(daysOf(feb).length, 29);
  assert.equal(new Date(feb.toMs).toISOString(), "2028-03-01T00:00:00.000Z");
  assert.equal(periodOf(Date.UTC(2026, 11, 31, 23, 59, 59, 999)).period, "2026-12");
  assert.equal(previousPeriod(parsePeriod("2026-01")).period, "2025-12");
  assert.throws(() => parsePeriod("2026-00"), /period: expected a month as YYYY-MM/);
});

test("billing line items - late usage is what grew since billing; what shrank is reported, never credited", () => {
  const key = { bus: "b", rule: "", target: "", stream: "" };
  const { late, shrunk } = lateUsage(
    [
      { meter: "publish", ...key, quantity: 10, units: 12 },
      { meter: "push", ...key, quantity: 5, units: 5 },
      { meter: "replay", ...key, quantity: 3, units: 3 },
    ],
    [
      { meter: "publish", ...key, quantity: 7, units: 8 },
      { meter: "push", ...key, quantity: 6, units: 6 },
      { meter: "redrive", ...key, quantity: 1, units: 1 },
    ],
  );
  assert.deepEqual(
    late.map((u) => [u.meter, u.quantity, u.units]),
    [
      ["publish", 3, 4],
      ["replay", 3, 3],
    ],
  );
  assert.deepEqual(
    shrunk.map((u) => [u.meter, u.quantity, u.units]),
    [
      ["push", -1, -1],
      ["redrive", -1, -1],
    ],
  );
  assert.deepEqual(resourceOf({ bus: "b", rule: "r", target: "", stream: "" }), {
    resourceKind: "rule",
    resource: "b/r",
  });
  assert.deepEqual(resourceOf({ bus: "", rule: "", target: "", stream: "s" }), {
    resourceKind: "stream",
    resource: "s",
  });
  assert.deepEqual(resourceOf({ bus: "", rule: "", target: "", stream: "" }), {
    resourceKind: "service",
    resource: "",
  });
});

test("billing totals - exact sums per group; a tenant-less line totals under ''", () => {
  const lines = [
    line({ amount: "0.10", tenant: "a" }),
    line({
      amount: "0.20",
      tenant: "a",
      meter: "push",
      resourceKind: "target",
      resource: "orders/r/t",
    }),
    line({
      amount: "1.00",
      bus: "",
      resourceKind: "stream",
      resource: "s1",
      stream: "s1",
      meter: "stream-events",
    }),
  ];
  const totals = totalsOf(lines, 2);
  assert.equal(totals.total, "1.30", "0.1 + 0.2 is 0.3 here, never 0.30000000000000004");
  assert.deepEqual(
    totals.byTenant.map((t) => [t.tenant, t.amount]),
    [
      ["", "1.00"],
      ["a", "0.30"],
    ],
  );
  assert.deepEqual(
    totals.byBus.map((t) => [t.bus, t.amount]),
    [["orders", "0.30"]],
  );
  assert.deepEqual(
    totals.byStream.map((t) => [t.stream, t.amount]),
    [["s1", "1.00"]],
  );
  assert.deepEqual(
    totals.byResource.map((r) => r.resource),
    ["s1", "orders/r/t", "orders"],
  );
});

test("billing csv - fields with commas, quotes or line breaks are quoted, quotes doubled", () => {
  const csv = billingCsv({
    period: "2026-02",
    lineItems: [line({ tenant: 'ACME, "the" co\nltd' })],
  });
  const [, row] = csv.split("\r\n");
  assert.equal(
    row,
    '2026-02,1,2026-02,bus,orders,orders,,,,"ACME, ""the"" co\nltd",publish,1,1,5.64,per-million-units,0.00,CNY',
  );
});

test("billing report - every string from the data is escaped", () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
  const evil = `"><script>alert(1)</script>`;
  const statement: BillingStatementView = {
    period: "2026-02",
    from: "2026-02-01T00:00:00.000Z",
    to: "2026-03-01T00:00:00.000Z",
    state: "closed",
    preview: false,
    closedAt: "2026-03-01T00:00:05.000Z",
    currency: "CNY",
    lineItems: [line({ tenant: evil, resource: evil, meter: evil })],
    totals: totalsOf([line({ tenant: evil, resource: evil, meter: evil })], 2),
    dailyUsage: [{ date: "2026-02-03", meter: evil, quantity: 1, units: 1 }],
  };
  const html = renderBillingReport(statement, { generatedAt: new Date(0) });
  assert.ok(!html.includes("<script>"), "no script element got through");
  assert.ok(html.includes("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.equal(html.match(/<rect class="bar"/g)?.length, 28, "one bar per day of February 2026");
});
