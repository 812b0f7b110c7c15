import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { loadConfig } from "../../src/config/load-config.js";
import { isRelaybusError } from "../../src/errors.js";
import { compilePriceTable, minorUnitsOf, sumDecimals } from "../../src/metering/price-table.js";

const defaults = compilePriceTable(DEFAULT_CONFIG.billing);

/** Half-to-even rounding of `numerator / denominator` (both non-negative BigInts) to an integer. */
function roundHalfEven(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  const twiceRemainder = (numerator % denominator) * 2n;
  if (twiceRemainder > denominator) return quotient + 1n;
  if (twiceRemainder < denominator) return quotient;
  return quotient % 2n === 0n ? quotient : quotient + 1n;
}

/** A decimal text as (integer, scale): "5.64" → 564n, 2. */
function scaled(text: string): { value: bigint; scale: number } {
  const [whole = "0", fraction = ""] = text.split(".");
  return { value: BigInt(whole + fraction), scale: fraction.length };
}

function minorToText(minor: bigint, places: number): string {
  const digits = minor.toString().padStart(places + 1, "0");
  return places === 0 ? digits : `${digits.slice(0, -places)}.${digits.slice(-places)}`;
}

test("price - 3 units of publish at 5.64 per million are exactly 0.00001692, rounded half to even to 0.00 CNY", () => {
  const line = defaults.amountOf("publish", 3, 3);
  assert.equal(line.unitPrice, "5.64");
  assert.equal(line.basis, "per-million-units");
  assert.equal(line.exactAmount, "0.00001692");
  assert.equal(line.amount, "0.00");
  assert.equal(line.amountMinor, 0);
  // A float would say 0.000016919999999999998 here; big.js says what the decimal is.
  assert.equal(defaults.amountOf("publish", 1_000_000, 1_000_000).amount, "5.64");
  assert.equal(defaults.amountOf("publish", 1, 2_500_000).exactAmount, "14.1");
});

test("price - half to even: a half rounds to the even neighbour, anything above a half rounds up", () => {
  // At 0.01 per million units, 500,000 units cost exactly half a fen.
  const table = compilePriceTable({
    currency: "CNY",
    prices: { ...DEFAULT_CONFIG.billing.prices, push: "0.01" },
  });
  assert.equal(table.amountOf("push", 0, 500_000).exactAmount, "0.005");
  assert.equal(table.amountOf("push", 0, 500_000).amount, "0.00", "0.005 → 0.00 (0 is even)");
  assert.equal(table.amountOf("push", 0, 1_500_000).amount, "0.02", "0.015 → 0.02 (2 is even)");
  assert.equal(table.amountOf("push", 0, 2_500_000).amount, "0.02", "0.025 → 0.02");
  assert.equal(table.amountOf("push", 0, 2_500_001).amount, "0.03", "just above a half rounds up");
});

test("price - the other bases: CU-hours from CU-milli-hours, idle days, replay and redrive priced like push", () => {
  const cu = defaults.amountOf("stream-cu-hours", 2_500, 0);
  assert.deepEqual(
    [cu.basis, cu.unitPrice, cu.exactAmount, cu.amount],
    ["per-cu-hour", "0.24", "0.6", "0.60"],
  );
  const idle = defaults.amountOf("stream-idle", 3, 0);
  assert.deepEqual([idle.basis, idle.amount], ["per-day", "3.00"]);
  assert.equal(defaults.priceOf("replay").unitPrice, "1.29");
  assert.equal(defaults.priceOf("redrive").unitPrice, "1.29");
  const own = compilePriceTable({
    currency: "CNY",
    prices: { ...DEFAULT_CONFIG.billing.prices, replay: "0.5" },
  });
  assert.equal(own.priceOf("replay").unitPrice, "0.5");
  assert.equal(own.priceOf("redrive").unitPrice, "1.29");
  assert.deepEqual(defaults.priceOf("something-new"), {
    unitPrice: "0",
    basis: "per-million-units",
  });
});

test("price - publishes to a system bus are priced 0; its pushes are not", () => {
  assert.equal(defaults.amountOf("publish", 10, 4_000_000, { systemBus: true }).amount, "0.00");
  assert.equal(defaults.amountOf("publish", 10, 4_000_000, { systemBus: true }).unitPrice, "0");
  assert.equal(defaults.amountOf("push", 10, 4_000_000, { systemBus: true }).amount, "5.16");
});

test("price - minor units follow the currency: JPY has none, KWD three", () => {
  assert.equal(minorUnitsOf("CNY"), 2);
  assert.equal(minorUnitsOf("JPY"), 0);
  assert.equal(minorUnitsOf("KWD"), 3);
  const yen = compilePriceTable({
    currency: "JPY",
    prices: { ...DEFAULT_CONFIG.billing.prices, publish: "120" },
  });
  assert.equal(yen.amountOf("publish", 0, 12_345).exactAmount, "1.4814");
  assert.equal(yen.amountOf("publish", 0, 12_345).amount, "1");
  assert.throws(
    () => minorUnitsOf("yuan"),
    (e) => isRelaybusError(e, "InvalidConfig") && e.message.includes("billing.currency"),
  );
});

test("price - a price that is not decimal text is refused, naming the setting", () => {
  assert.throws(
    () =>
      compilePriceTable({
        currency: "CNY",
        prices: { ...DEFAULT_CONFIG.billing.prices, push: 1.29 as unknown as string },
      }),
    (e) => isRelaybusError(e, "InvalidConfig") && e.message.includes("billing.prices.push"),
  );
  assert.throws(
    () =>
      compilePriceTable({
        currency: "CNY",
        prices: { ...DEFAULT_CONFIG.billing.prices, publish: "1e-6" },
      }),
    (e) => isRelaybusError(e, "InvalidConfig") && e.message.includes("billing.prices.publish"),
  );
});

test("price - configuration: defaults, decimal strings only, a cron expression, tenants", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-billing-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = loadConfig({}, {});
  assert.equal(config.billing.currency, "CNY");
  assert.equal(config.billing.prices.publish, "5.64");
  assert.equal(config.billing.periodCron, "0 0 1 * *");
  assert.deepEqual(config.billing.tenants, {});
  let files = 0;
  const bad = (billing: unknown, pointer: RegExp) => {
    const file = join(dir, `config-${++files}.json`);
    writeFileSync(file, JSON.stringify({ billing }));
    assert.throws(
      () => loadConfig({ config: file }, {}),
      (e) => isRelaybusError(e, "InvalidConfig") && pointer.test(e.message),
    );
  };
  bad({ prices: { publish: 5.64 } }, /\/billing\/prices\/publish: must be string/);
  bad({ prices: { publish: "5,64" } }, /\/billing\/prices\/publish/);
  bad({ prices: { pubish: "1" } }, /unknown setting "pubish"/);
  bad({ periodCron: "every month" }, /\/billing\/periodCron/);
  bad({ currency: "cny" }, /\/billing\/currency/);
  bad({ tenants: { orders: 7 } }, /\/billing\/tenants\/orders/);
});

test("price - sums of many rounded line items equal a BigInt recomputation, to the minor unit", () => {
  const meters = [
    "publish",
    "push",
    "replay",
    "stream-events",
    "stream-cu-hours",
    "stream-idle",
  ] as const;
  fc.assert(
    fc.property(
      // Up to 10^5 per unit and 2^28 idle days or CU-milli-hours: every amount stays below
      // 2^53 fen, the range `amountMinor` holds exactly.
      fc.constantFrom("5.64", "1.29", "0.000001", "2.8", "99999.999999999999", "0.5", "7"),
      fc.array(
        fc.record({
          meter: fc.constantFrom(...meters),
          quantity: fc.integer({ min: 0, max: 2 ** 28 }),
          units: fc.integer({ min: 0, max: 2 ** 40 }),
        }),
        { maxLength: 60 },
      ),
      (price, lines) => {
        const table = compilePriceTable({
          currency: "CNY",
          prices: {
            publish: price,
            push: price,
            "stream-events": price,
            "stream-cu-hours": price,
            "stream-idle": price,
          },
        });
        const { value, scale } = scaled(price);
        let expectedTotal = 0n;
        const amounts: string[] = [];
        for (const line of lines) {
          const counted = BigInt(
            line.meter === "stream-cu-hours" || line.meter === "stream-idle"
              ? line.quantity
              : line.units,
          );
          const divisor =
            line.meter === "stream-cu-hours"
              ? 1_000n
              : line.meter === "stream-idle"
                ? 1n
                : 1_000_000n;
          // amount in fen = counted × price × 100 / divisor, price = value / 10^scale
          const minor = roundHalfEven(counted * value * 100n, divisor * 10n ** BigInt(scale));
          const got = table.amountOf(line.meter, line.quantity, line.units);
          assert.equal(got.amount, minorToText(minor, 2));
          assert.equal(BigInt(got.amountMinor), minor);
          expectedTotal += minor;
          amounts.push(got.amount);
        }
        assert.equal(table.sum(amounts), minorToText(expectedTotal, 2));
        assert.equal(sumDecimals(amounts, 2), minorToText(expectedTotal, 2));
      },
    ),
    { numRuns: 300 },
  );
});
