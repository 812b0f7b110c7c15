/**
 * Usage to priced line items: one line per (meter, resource) of a period, and the late
 * lines that bill usage which reached an already closed period after it was closed.
 * Pure functions of their inputs, so a close and a preview of the same usage give the same
 * lines, in the same order.
 */
import type { BillingResourceKind, NewBillingRecord, ResourceUsage } from "../log/billing-store.js";
import type { PriceTable } from "./price-table.js";

/** What pricing a line needs besides its usage. */
export interface LinePricing {
  prices: PriceTable;
  /** The tenant a bus is billed to, '' when none. */
  tenantOf: (bus: string) => string;
  /** True for a system bus, whose publishes are free. */
  isSystemBus: (bus: string) => boolean;
}

/** Prices each usage total as one line item counted in `usagePeriod`. */
export function priceUsage(
  usage: readonly ResourceUsage[],
  usagePeriod: string,
  pricing: LinePricing,
): NewBillingRecord[] {
  return usage.map((u) => {
    const { resourceKind, resource } = resourceOf(u);
    const amount = pricing.prices.amountOf(u.meter, u.quantity, u.units, {
      systemBus: u.bus !== "" && pricing.isSystemBus(u.bus),
    });
    return {
      meter: u.meter,
      bus: u.bus,
      rule: u.rule,
      target: u.target,
      stream: u.stream,
      quantity: u.quantity,
      units: u.units,
      usagePeriod,
      resourceKind,
      resource,
      tenant: u.bus === "" ? "" : pricing.tenantOf(u.bus),
      unitPrice: amount.unitPrice,
      priceBasis: amount.basis,
      amount: amount.amount,
      amountMinor: amount.amountMinor,
      currency: pricing.prices.currency,
    };
  });
}

/** What {@link lateUsage} found. */
export interface LateUsage {
  /** Usage counted beyond what was billed: the late lines to bill. */
  late: ResourceUsage[];
  /**
   * Keys whose usage is now below what was billed (a count that should never shrink did):
   * nothing is credited, and the caller logs them.
   */
  shrunk: ResourceUsage[];
}

/**
 * The usage of a closed period's days beyond what its records (and late lines billed
 * since) cover: `counted` minus `billed`, per key, where it grew.
 */
export function lateUsage(
  counted: readonly ResourceUsage[],
  billed: readonly ResourceUsage[],
): LateUsage {
  const billedByKey = new Map(billed.map((b) => [keyOf(b), b]));
  const late: ResourceUsage[] = [];
  const shrunk: ResourceUsage[] = [];
  for (const c of counted) {
    const b = billedByKey.get(keyOf(c));
    billedByKey.delete(keyOf(c));
    const quantity = c.quantity - (b?.quantity ?? 0);
    const units = c.units - (b?.units ?? 0);
    if (quantity < 0 || units < 0) shrunk.push({ ...c, quantity, units });
    else if (quantity > 0 || units > 0) late.push({ ...c, quantity, units });
  }
  for (const b of billedByKey.values())
    shrunk.push({ ...b, quantity: -b.quantity, units: -b.units });
  return { late, shrunk };
}

/**
 * What a usage row is for: the most specific resource it names. A stream's usage is the
 * stream's; a target's is `bus/rule/target`; a rule's `bus/rule`; a bus's the bus.
 */
export function resourceOf(u: Pick<ResourceUsage, "bus" | "rule" | "target" | "stream">): {
  resourceKind: BillingResourceKind;
  resource: string;
} {
  if (u.stream !== "") return { resourceKind: "stream", resource: u.stream };
  if (u.target !== "")
    return { resourceKind: "target", resource: `${u.bus}/${u.rule}/${u.target}` };
  if (u.rule !== "") return { resourceKind: "rule", resource: `${u.bus}/${u.rule}` };
  if (u.bus !== "") return { resourceKind: "bus", resource: u.bus };
  return { resourceKind: "service", resource: "" };
}

function keyOf(u: ResourceUsage): string {
  return JSON.stringify([u.meter, u.bus, u.rule, u.target, u.stream]);
}
