/**
 * Billing periods are calendar months in UTC, named `YYYY-MM`: a period runs from its first
 * midnight (UTC) up to, not including, the next month's. Usage belongs to the period of the
 * UTC day it was counted on.
 */
import { RelaybusError } from "../errors.js";

/** A billing period and its bounds. */
export interface PeriodRange {
  /** `YYYY-MM`. */
  period: string;
  /** The first instant, ms since the epoch (UTC midnight of the 1st). */
  fromMs: number;
  /** The first instant of the next period. */
  toMs: number;
}

/** One day in ms. */
export const DAY_MS = 86_400_000;

const PERIOD_PATTERN = /^(\d{4})-(0[1-9]|1[0-2])$/;

/**
 * Parses `YYYY-MM` (years 2000 to 9999). Throws `ValidationError` naming `field` and the
 * expected form.
 */
export function parsePeriod(text: string, field = "period"): PeriodRange {
  const match = PERIOD_PATTERN.exec(text);
  const year = Number(match?.[1]);
  if (match === null || year < 2000) {
    throw new RelaybusError(
      "ValidationError",
      `${field}: expected a month as YYYY-MM (2000-01 or later), got ${JSON.stringify(text)}`,
      { details: { field } },
    );
  }
  return rangeOf(year, Number(match[2]) - 1);
}

/** The period `timeMs` falls in. */
export function periodOf(timeMs: number): PeriodRange {
  const date = new Date(timeMs);
  return rangeOf(date.getUTCFullYear(), date.getUTCMonth());
}

/** The period before `range`. */
export function previousPeriod(range: PeriodRange): PeriodRange {
  return periodOf(range.fromMs - 1);
}

/** The period after `range`. */
export function nextPeriod(range: PeriodRange): PeriodRange {
  return periodOf(range.toMs);
}

/** The UTC days of `range`, as their first instants. */
export function daysOf(range: Pick<PeriodRange, "fromMs" | "toMs">): number[] {
  const days: number[] = [];
  for (let day = range.fromMs; day < range.toMs; day += DAY_MS) days.push(day);
  return days;
}

/** `YYYY-MM-DD` of a day's first instant. */
export function dateOf(dayMs: number): string {
  return new Date(dayMs).toISOString().slice(0, 10);
}

function rangeOf(year: number, monthIndex: number): PeriodRange {
  const fromMs = Date.UTC(year, monthIndex, 1);
  const toMs = Date.UTC(year, monthIndex + 1, 1);
  return { period: new Date(fromMs).toISOString().slice(0, 7), fromMs, toMs };
}
