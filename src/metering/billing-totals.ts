/**
 * Totals of a period's line items: overall, per meter, bus, stream, tenant and resource.
 * Each is an exact sum of the lines' rounded amounts (big.js), so every total is what its
 * lines add up to, to the minor unit.
 */
import Big from "big.js";
import type { NewBillingRecord } from "../log/billing-store.js";
import { sumDecimals } from "./price-table.js";

/** One group's total. */
export interface AmountTotal {
  /** Decimal text with the currency's places. */
  amount: string;
  /** What the meters counted, summed (meaningful within one meter). */
  quantity: number;
  units: number;
}

export interface MeterTotal extends AmountTotal {
  meter: string;
}
export interface BusTotal extends AmountTotal {
  bus: string;
}
export interface StreamTotal extends AmountTotal {
  stream: string;
}
export interface TenantTotal extends AmountTotal {
  /** '' for line items of no tenant. */
  tenant: string;
}
export interface ResourceTotal extends AmountTotal {
  resourceKind: NewBillingRecord["resourceKind"];
  resource: string;
}

/** Every total of a period. */
export interface BillingTotals {
  total: string;
  byMeter: MeterTotal[];
  /** Line items of a bus (publishes, and its rules' and targets' pushes, replays, redrives). */
  byBus: BusTotal[];
  byStream: StreamTotal[];
  byTenant: TenantTotal[];
  /** Per resource, largest amount first (ties by name): the report's top resources. */
  byResource: ResourceTotal[];
}

type Line = Pick<
  NewBillingRecord,
  | "meter"
  | "bus"
  | "stream"
  | "tenant"
  | "resourceKind"
  | "resource"
  | "quantity"
  | "units"
  | "amount"
>;

/** The totals of `lines`, each with `places` decimals. Groups are sorted by name. */
export function totalsOf(lines: readonly Line[], places: number): BillingTotals {
  const group = <K extends string>(key: (line: Line) => string | undefined, name: K) =>
    [...groupLines(lines, key)]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(
        ([value, members]) =>
          ({ [name]: value, ...sumOf(members, places) }) as Record<K, string> & AmountTotal,
      );

  const byResource = [...groupLines(lines, (l) => JSON.stringify([l.resourceKind, l.resource]))]
    .map(([key, members]) => {
      const [resourceKind, resource] = JSON.parse(key) as [
        NewBillingRecord["resourceKind"],
        string,
      ];
      return { resourceKind, resource, ...sumOf(members, places) };
    })
    .sort(
      (a, b) =>
        compareAmounts(b.amount, a.amount) ||
        (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0),
    );

  return {
    total: sumDecimals(
      lines.map((l) => l.amount),
      places,
    ),
    byMeter: group((l) => l.meter, "meter"),
    byBus: group((l) => (l.bus === "" ? undefined : l.bus), "bus"),
    byStream: group((l) => (l.stream === "" ? undefined : l.stream), "stream"),
    byTenant: group((l) => l.tenant, "tenant"),
    byResource,
  };
}

function groupLines(
  lines: readonly Line[],
  key: (line: Line) => string | undefined,
): Map<string, Line[]> {
  const groups = new Map<string, Line[]>();
  for (const line of lines) {
    const value = key(line);
    if (value === undefined) continue;
    const members = groups.get(value);
    if (members === undefined) groups.set(value, [line]);
    else members.push(line);
  }
  return groups;
}

function sumOf(lines: readonly Line[], places: number): AmountTotal {
  let quantity = 0;
  let units = 0;
  for (const line of lines) {
    quantity += line.quantity;
    units += line.units;
  }
  return {
    amount: sumDecimals(
      lines.map((l) => l.amount),
      places,
    ),
    quantity,
    units,
  };
}

/** Compares two decimal texts exactly (no floats). */
function compareAmounts(a: string, b: string): number {
  return new Big(a).cmp(b);
}
