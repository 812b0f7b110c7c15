/**
 * The price table: what each meter costs, in exact decimals (big.js), and how one line
 * item's amount is computed and rounded.
 *
 * - Event meters (`publish`, `push`, `replay`, `redrive`, `stream-events`) are priced per
 *   million 64 KB units: amount = units × price / 1,000,000.
 * - `stream-cu-hours` counts CU-milli-hours: amount = quantity × price / 1,000.
 * - `stream-idle` counts idle days: amount = quantity × price.
 *
 * Multiplying and dividing by powers of ten is exact in big.js, so the unrounded amount is
 * the exact product. It is rounded ONCE, per line item, to the currency's minor unit (2
 * places for CNY, from ISO 4217 through `Intl`), half to even (banker's rounding: a half
 * goes to the even neighbour, so halves do not all round the same way across many lines).
 * Totals are sums of rounded line items, so a bill's lines add up to its total exactly.
 *
 * `replay` and `redrive` are priced like `push` unless `billing.prices` sets them. A meter
 * the table does not know is priced 0 per million units (its line items still appear).
 * Publishes to a system bus are free (price 0); their line items still appear.
 */
import Big from "big.js";
import type { BillingConfig } from "../config/defaults.js";
import { RelaybusError } from "../errors.js";
import type { PriceBasis } from "../log/billing-store.js";

/** Big.js rounding mode 2: half to even. */
const ROUND_HALF_EVEN = 2;

/** Each meter's price basis; any other meter is per million units. */
const METER_BASES: Readonly<Record<string, PriceBasis>> = {
  "stream-cu-hours": "per-cu-hour",
  "stream-idle": "per-day",
};

/** What one unit of the basis is, in the meter's counted quantity. */
const BASIS_DIVISOR: Readonly<Record<PriceBasis, number>> = {
  "per-million-units": 1_000_000,
  // The meter counts CU-milli-hours.
  "per-cu-hour": 1_000,
  "per-day": 1,
};

/** The meters with a price of their own; `replay` and `redrive` fall back to `push`. */
const FALLBACK_PRICE: Readonly<Record<string, string>> = { replay: "push", redrive: "push" };

/** A price as decimal text: what the configuration schema allows. */
const DECIMAL = /^(0|[1-9][0-9]{0,11})(\.[0-9]{1,12})?$/;

/** The price of one meter, as a line item records it. */
export interface MeterPrice {
  /** Decimal text, normalised (`"5.64"`, `"0"`). */
  unitPrice: string;
  basis: PriceBasis;
}

/** One line item's amount. */
export interface LineAmount extends MeterPrice {
  /** The unrounded product, decimal text (`"0.00001692"`). */
  exactAmount: string;
  /** Rounded half to even to the currency's minor unit, with exactly that many places (`"0.00"`). */
  amount: string;
  /** `amount` in minor units (fen), an integer. */
  amountMinor: number;
}

/** A compiled price table. */
export interface PriceTable {
  currency: string;
  /** Decimal places of the currency's minor unit. */
  minorUnits: number;
  /** The price of `meter`; 0 for a publish to a system bus. */
  priceOf(meter: string, options?: { systemBus?: boolean }): MeterPrice;
  /** Prices `quantity` (what the meter counts) and `units` (64 KB units) of `meter`. */
  amountOf(
    meter: string,
    quantity: number,
    units: number,
    options?: { systemBus?: boolean },
  ): LineAmount;
  /** The sum of amounts (decimal text), formatted with the currency's places. */
  sum(amounts: Iterable<string>): string;
}

/**
 * Compiles `billing` (currency and prices) into a {@link PriceTable}. Throws
 * `InvalidConfig` naming the setting when a price is not decimal text or the currency is
 * not an ISO 4217 code.
 */
export function compilePriceTable(billing: Pick<BillingConfig, "currency" | "prices">): PriceTable {
  const currency = billing.currency;
  const minorUnits = minorUnitsOf(currency);
  const configured = billing.prices as unknown as Record<string, string | undefined>;
  const prices = new Map<string, Big>();
  for (const [meter, text] of Object.entries(configured)) {
    if (text === undefined) continue;
    if (typeof text !== "string" || !DECIMAL.test(text)) {
      throw new RelaybusError(
        "InvalidConfig",
        `billing.prices.${meter}: expected decimal text such as "5.64" (quoted in YAML), got ${JSON.stringify(text)}`,
        { details: { setting: `billing.prices.${meter}` } },
      );
    }
    prices.set(meter, new Big(text));
  }
  const zero = new Big(0);

  const priceOf = (meter: string, options: { systemBus?: boolean } = {}): MeterPrice => {
    const basis = METER_BASES[meter] ?? "per-million-units";
    if (options.systemBus === true && meter === "publish") return { unitPrice: "0", basis };
    const fallback = FALLBACK_PRICE[meter];
    const price =
      prices.get(meter) ?? (fallback === undefined ? undefined : prices.get(fallback)) ?? zero;
    return { unitPrice: price.toFixed(), basis };
  };

  return {
    currency,
    minorUnits,
    priceOf,
    amountOf(meter, quantity, units, options = {}) {
      const price = priceOf(meter, options);
      const counted = price.basis === "per-million-units" ? units : quantity;
      const exact = new Big(price.unitPrice).times(counted).div(BASIS_DIVISOR[price.basis]);
      const rounded = exact.round(minorUnits, ROUND_HALF_EVEN);
      const amountMinor = Number(rounded.times(new Big(10).pow(minorUnits)).toFixed(0));
      if (!Number.isSafeInteger(amountMinor)) {
        throw new RelaybusError(
          "InternalError",
          `the amount of ${meter} (${rounded.toFixed()} ${currency}) is beyond the exact range of a line item`,
        );
      }
      return {
        ...price,
        exactAmount: exact.toFixed(),
        amount: rounded.toFixed(minorUnits),
        amountMinor,
      };
    },
    sum: (amounts) => sumDecimals(amounts, minorUnits),
  };
}

/** The exact sum of decimal texts, formatted with `places` decimals. */
export function sumDecimals(amounts: Iterable<string>, places: number): string {
  let total = new Big(0);
  for (const amount of amounts) total = total.plus(amount);
  return total.toFixed(places);
}

/**
 * Decimal places of `currency`'s minor unit, from ISO 4217 as ICU knows it (CNY 2, JPY 0,
 * KWD 3). Throws `InvalidConfig` for a code that is not three capital letters.
 */
export function minorUnitsOf(currency: string): number {
  if (!/^[A-Z]{3}$/.test(currency)) {
    throw new RelaybusError(
      "InvalidConfig",
      `billing.currency: expected an ISO 4217 code such as "CNY", got ${JSON.stringify(currency)}`,
      { details: { setting: "billing.currency" } },
    );
  }
  return (
    new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
      .maximumFractionDigits ?? 2
  );
}
