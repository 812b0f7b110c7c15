/**
 * Billing periods on a real state file: closing computes the line items of the period's
 * days, in one transaction with marking it closed; a closed period never changes; usage that
 * reaches it late is billed once, in the next period closed; previews are what a close
 * would write.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { isRelaybusError } from "../../src/errors.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import type { UsageCount } from "../../src/log/usage-store.js";
import { createBillingPeriods, type BillingPeriods } from "../../src/metering/billing-period.js";
import { compilePriceTable } from "../../src/metering/price-table.js";
import { silentLogger } from "../../src/types.js";

const HOUR_MS = 3_600_000;
const MAY = Date.UTC(2026, 4, 1);
const JUNE = Date.UTC(2026, 5, 1);
const JULY = Date.UTC(2026, 6, 1);

interface Setup {
  storage: SqliteStorage;
  billing: BillingPeriods;
  /** The clock the billing sees; tests move it. */
  now: { ms: number };
}

async function setup(t: TestContext, nowMs: number): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-billing-"));
  const storage = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only" });
  t.after(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const now = { ms: nowMs };
  const billing = createBillingPeriods({
    store: storage.billing,
    prices: compilePriceTable(DEFAULT_CONFIG.billing),
    tenants: { orders: "shop", payments: "shop", audit: "platform" },
    isSystemBus: (bus) => bus === "audit",
    rollupDay: (dayMs) => void storage.usage.rollUpDay(dayMs),
    clock: { nowMs: () => now.ms },
    logger: silentLogger,
  });
  return { storage, billing, now };
}

function publish(bus: string, hourMs: number, events: number, units: number): UsageCount {
  return { hourMs, meter: "publish", bus, quantity: events, units };
}

function push(
  bus: string,
  rule: string,
  target: string,
  hourMs: number,
  attempts: number,
  units: number,
): UsageCount {
  return { hourMs, meter: "push", bus, rule, target, quantity: attempts, units };
}

/** Usage spread over May: the first and last hour of the month, and one just outside it on each side. */
function mayUsage(): UsageCount[] {
  return [
    publish("orders", MAY, 2, 3),
    publish("orders", JUNE - HOUR_MS, 1_000_000, 1_000_000),
    publish("audit", MAY + 5 * 86_400_000, 7, 7),
    push("orders", "big", "fulfil", MAY + HOUR_MS, 3, 4),
    push("orders", "big", "fulfil", JUNE - HOUR_MS, 2_000_000, 2_000_000),
    {
      hourMs: MAY + 2 * HOUR_MS,
      meter: "replay",
      bus: "payments",
      rule: "r",
      target: "t",
      quantity: 500_000,
      units: 500_000,
    },
    publish("orders", MAY - HOUR_MS, 99, 99), // April
    publish("orders", JUNE, 77, 77), // June
  ];
}

test("billing - closing a period prices its days' usage per meter and resource, in one go with marking it closed", async (t) => {
  const { storage, billing } = await setup(t, JUNE + 10 * HOUR_MS);
  storage.usage.addCounts(mayUsage());

  const result = await billing.close("2026-05");
  assert.equal(result.closed, true);
  assert.equal(result.period.state, "closed");
  assert.equal(result.period.currency, "CNY");

  const records = storage.billing.records("2026-05");
  const shown = records.map((r) => [
    r.meter,
    r.resourceKind,
    r.resource,
    r.tenant,
    r.quantity,
    r.units,
    r.unitPrice,
    r.amount,
  ]);
  assert.deepEqual(shown, [
    ["publish", "bus", "audit", "platform", 7, 7, "0", "0.00"],
    ["publish", "bus", "orders", "shop", 1_000_002, 1_000_003, "5.64", "5.64"],
    ["push", "target", "orders/big/fulfil", "shop", 2_000_003, 2_000_004, "1.29", "2.58"],
    ["replay", "target", "payments/r/t", "shop", 500_000, 500_000, "1.29", "0.64"],
  ]);
  assert.ok(records.every((r) => r.usagePeriod === "2026-05" && r.currency === "CNY"));
  assert.equal(result.period.total, "8.86");
  assert.equal(result.period.lineItems, 4);

  // Totals per bus and tenant straight from SQL, exact in integer minor units.
  const byTenant = storage.stateDatabase
    .prepare(
      "SELECT tenant, SUM(amount_minor) AS fen FROM billing_records WHERE period = ? GROUP BY tenant ORDER BY tenant",
    )
    .all("2026-05");
  assert.deepEqual(byTenant, [
    { tenant: "platform", fen: 0 },
    { tenant: "shop", fen: 886 },
  ]);
  const statement = await billing.statement("2026-05");
  assert.equal(statement.preview, false);
  assert.equal(statement.totals.total, "8.86");
  assert.deepEqual(
    statement.totals.byBus.map((b) => [b.bus, b.amount]),
    [
      ["audit", "0.00"],
      ["orders", "8.22"],
      ["payments", "0.64"],
    ],
  );
  assert.deepEqual(
    statement.totals.byResource.map((r) => [r.resource, r.amount]),
    [
      ["orders", "5.64"],
      ["orders/big/fulfil", "2.58"],
      ["payments/r/t", "0.64"],
      ["audit", "0.00"],
    ],
    "largest amount first",
  );
  // The chart's data: per day and meter, May only.
  assert.deepEqual(
    statement.dailyUsage
      .filter((d) => d.meter === "publish")
      .map((d) => [new Date(d.dayMs).toISOString().slice(0, 10), d.units]),
    [
      ["2026-05-01", 3],
      ["2026-05-06", 7],
      ["2026-05-31", 1_000_000],
    ],
  );
});

test("billing - a closed period never changes: closing again does nothing, and the file refuses edits", async (t) => {
  const { storage, billing } = await setup(t, JUNE + HOUR_MS);
  storage.usage.addCounts(mayUsage());
  await billing.close("2026-05");
  const before = storage.billing.records("2026-05");

  storage.usage.addCounts([publish("orders", MAY + HOUR_MS, 5, 5_000_000)]);
  const again = await billing.close("2026-05");
  assert.equal(again.closed, false);
  assert.deepEqual(storage.billing.records("2026-05"), before);
  assert.equal((await billing.statement("2026-05")).totals.total, "8.86");

  const db = storage.stateDatabase;
  assert.throws(
    () => db.prepare("UPDATE billing_records SET amount = '0.00' WHERE period = '2026-05'").run(),
    /never change/,
  );
  assert.throws(() => db.prepare("DELETE FROM billing_records").run(), /never change/);
  assert.throws(
    () => db.prepare("UPDATE billing_periods SET total_minor = 0").run(),
    /never changes/,
  );
  assert.throws(() => db.prepare("DELETE FROM billing_periods").run(), /never changes/);
});

test("billing - usage reaching a closed period late is billed once, as late lines of the next period closed", async (t) => {
  const { storage, billing, now } = await setup(t, JUNE + HOUR_MS);
  storage.usage.addCounts(mayUsage());
  await billing.close("2026-05");
  // A meter catches up on May's last hour after May was closed.
  storage.usage.addCounts([
    publish("orders", JUNE - HOUR_MS, 4, 2_000_000),
    publish("late-bus", JUNE - HOUR_MS, 1, 1),
  ]);
  now.ms = JULY + HOUR_MS;
  await billing.close("2026-06");

  const june = storage.billing.records("2026-06");
  const late = june.filter((r) => r.usagePeriod === "2026-05");
  assert.deepEqual(
    late.map((r) => [r.meter, r.resource, r.quantity, r.units, r.amount]),
    [
      ["publish", "late-bus", 1, 1, "0.00"],
      ["publish", "orders", 4, 2_000_000, "11.28"],
    ],
  );
  assert.deepEqual(
    june.filter((r) => r.usagePeriod === "2026-06").map((r) => [r.resource, r.units]),
    [["orders", 77]],
  );

  // Every unit counted in May and June is billed exactly once across the two periods.
  const counted = storage.stateDatabase
    .prepare("SELECT SUM(units) FROM usage_daily WHERE day_ms >= ? AND day_ms < ?")
    .pluck()
    .get(MAY, JULY);
  const billed = storage.stateDatabase
    .prepare("SELECT SUM(units) FROM billing_records")
    .pluck()
    .get();
  assert.equal(billed, counted);

  // Closing July later finds nothing more to bill late.
  now.ms = Date.UTC(2026, 7, 1, 1);
  await billing.close("2026-07");
  assert.deepEqual(storage.billing.records("2026-07"), []);
});

test("billing - an open period's preview is what closing it writes", async (t) => {
  const { storage, billing, now } = await setup(t, MAY + 20 * 86_400_000);
  storage.usage.addCounts(mayUsage().filter((c) => c.hourMs < MAY + 20 * 86_400_000));
  const preview = await billing.statement("2026-05");
  assert.equal(preview.preview, true);
  assert.equal(preview.state, "open");
  assert.equal(storage.billing.getPeriod("2026-05"), undefined, "a preview stores nothing");
  const listed = await billing.list();
  assert.deepEqual(
    listed.map((p) => [p.period, p.state, p.preview, p.total]),
    [
      ["2026-05", "open", true, preview.totals.total],
      ["2026-04", "open", true, "0.00"],
    ],
  );

  now.ms = JUNE + HOUR_MS;
  await billing.close("2026-05");
  const closed = await billing.statement("2026-05");
  assert.deepEqual(
    closed.lineItems.map(({ line, meter, resource, quantity, units, amount }) => ({
      line,
      meter,
      resource,
      quantity,
      units,
      amount,
    })),
    preview.lineItems.map(({ line, meter, resource, quantity, units, amount }) => ({
      line,
      meter,
      resource,
      quantity,
      units,
      amount,
    })),
  );
});

test("billing - only ended periods close; periods not begun have no records; names are YYYY-MM", async (t) => {
  const { billing } = await setup(t, MAY + 86_400_000);
  await assert.rejects(
    billing.close("2026-05"),
    (e) =>
      isRelaybusError(e, "BillingPeriodNotEnded") && e.message.includes("2026-06-01T00:00:00.000Z"),
  );
  await assert.rejects(billing.close("2027-01"), (e) =>
    isRelaybusError(e, "BillingPeriodNotEnded"),
  );
  await assert.rejects(billing.statement("2026-06"), (e) =>
    isRelaybusError(e, "BillingPeriodNotFound"),
  );
  for (const bad of ["2026-5", "2026-13", "1999-12", "may"]) {
    await assert.rejects(
      billing.statement(bad),
      (e) => isRelaybusError(e, "ValidationError") && e.message.startsWith("period:"),
    );
  }
});

test("billing - the scheduled job closes the month just ended and older ones with usage, oldest first", async (t) => {
  const { storage, billing, now } = await setup(t, JULY + HOUR_MS);
  storage.usage.addCounts([
    publish("orders", Date.UTC(2026, 1, 3), 1, 1),
    publish("orders", MAY + HOUR_MS, 1, 1),
  ]);
  assert.deepEqual(await billing.closeEnded(), ["2026-02", "2026-05", "2026-06"]);
  assert.deepEqual(
    storage.billing.listPeriods().map((p) => [p.period, p.lineItems]),
    [
      ["2026-06", 0],
      ["2026-05", 1],
      ["2026-02", 1],
    ],
  );
  assert.deepEqual(await billing.closeEnded(), [], "a second run finds nothing to close");
  now.ms = Date.UTC(2026, 7, 1, 0, 0, 1);
  assert.deepEqual(await billing.closeEnded(), ["2026-07"]);
});
