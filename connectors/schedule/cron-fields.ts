/**
 * The six fields of an AWS EventBridge Scheduler `cron(...)` expression, parsed and checked:
 * `minutes hours day-of-month month day-of-week year`.
 *
 * | field        | values                | also                                  |
 * | ------------ | --------------------- | ------------------------------------- |
 * | minutes      | 0-59                  | `, - * /`                             |
 * | hours        | 0-23                  | `, - * /`                             |
 * | day-of-month | 1-31                  | `, - * / ? L LW nW`                   |
 * | month        | 1-12 or JAN-DEC       | `, - * /`                             |
 * | day-of-week  | 1-7 or SUN-SAT (1=SUN)| `, - * / ? L nL n#k`                  |
 * | year         | 1970-2199             | `, - * /`                             |
 *
 * Exactly one of day-of-month and day-of-week is `?`. Steps read `a/s` (from a, every s),
 * `a-b/s` or `* /s` (without the space). A range may wrap (`FRI-MON`, `22-2`).
 *
 * The day fields come out in node-cron's notation (weekdays 0-6 from Sunday, `?` as `*`),
 * because node-cron's matcher decides which calendar days match (see cron-schedule.ts).
 */

/** One field's place, name and bounds. */
interface FieldSpec {
  position: number;
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const MONTH_NAMES = [
  "JAN",
  "FEB",
  "MAR",
  "APR",
  "MAY",
  "JUN",
  "JUL",
  "AUG",
  "SEP",
  "OCT",
  "NOV",
  "DEC",
] as const;
const DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] as const;

const FIELDS = {
  minutes: { position: 1, name: "minutes", min: 0, max: 59 },
  hours: { position: 2, name: "hours", min: 0, max: 23 },
  dayOfMonth: { position: 3, name: "day-of-month", min: 1, max: 31 },
  month: { position: 4, name: "month", min: 1, max: 12, names: MONTH_NAMES },
  dayOfWeek: { position: 5, name: "day-of-week", min: 1, max: 7, names: DAY_NAMES },
  year: { position: 6, name: "year", min: 1970, max: 2199 },
} as const satisfies Record<string, FieldSpec>;

/** The last year a cron expression can name: no fire comes after this year. */
export const MAX_CRON_YEAR = FIELDS.year.max;

/** A checked cron expression. */
export interface CronFields {
  /** Minutes and hours that fire, ascending. */
  minutes: number[];
  hours: number[];
  /** Months (1-12) and years that fire, ascending. */
  months: number[];
  years: number[];
  /** Day-of-month in node-cron notation: `*`, or a list of days, `L`, `LW`, `nW`. */
  dayOfMonth: string;
  /** Day-of-week in node-cron notation (0 = Sunday): `*`, or a list of days, `nL`, `n#k`. */
  dayOfWeek: string;
}

/** Parses the text between `cron(` and `)`. Throws an Error naming the field and the fix. */
export function parseCronFields(inner: string): CronFields {
  const where = `cron(${inner})`;
  const fields = inner.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new Error(
      `${where}: expected 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`,
    );
  }
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const domAny = dayOfMonth === "?";
  const dowAny = dayOfWeek === "?";
  if (domAny === dowAny) {
    throw new Error(
      `${where}: exactly one of field 3 (day-of-month) and field 5 (day-of-week) must be ?, ` +
        `as in cron(0 12 * * ? *) or cron(0 12 ? * MON-FRI *)`,
    );
  }
  return {
    minutes: numbers(where, FIELDS.minutes, minutes),
    hours: numbers(where, FIELDS.hours, hours),
    months: numbers(where, FIELDS.month, month),
    years: numbers(where, FIELDS.year, year),
    dayOfMonth: domAny ? "*" : daysOfMonth(where, dayOfMonth),
    dayOfWeek: dowAny ? "*" : daysOfWeek(where, dayOfWeek),
  };
}

function fail(where: string, spec: FieldSpec, message: string): never {
  throw new Error(`${where}: field ${spec.position} (${spec.name}) ${message}`);
}

/** A field of plain values: a list of `*`, `n`, `a-b`, with an optional `/step`. */
function numbers(where: string, spec: FieldSpec, field: string): number[] {
  const values = new Set<number>();
  for (const item of splitList(where, spec, field)) {
    for (const value of expandItem(where, spec, item)) values.add(value);
  }
  return [...values].sort((a, b) => a - b);
}

function splitList(where: string, spec: FieldSpec, field: string): string[] {
  const items = field.split(",");
  if (items.some((item) => item === ""))
    fail(where, spec, `${JSON.stringify(field)} has an empty list item`);
  if (items.length > 1 && items.includes("?")) fail(where, spec, "? stands alone, not in a list");
  return items;
}

/** `*`, `n`, `a-b`, each with an optional `/step`; `n/step` runs from n to the field's end. */
function expandItem(where: string, spec: FieldSpec, item: string): number[] {
  const [range = "", stepText, extra] = item.split("/");
  if (extra !== undefined) fail(where, spec, `${JSON.stringify(item)} has more than one /`);
  let step = 1;
  if (stepText !== undefined) {
    if (!/^\d+$/.test(stepText) || Number(stepText) < 1) {
      fail(where, spec, `${JSON.stringify(item)}: the step after / must be a whole number from 1`);
    }
    step = Number(stepText);
  }
  if (range === "*") return walk(spec.min, spec.max, step, spec);
  const bounds = range.split("-");
  if (bounds.length > 2)
    fail(where, spec, `${JSON.stringify(item)} is not a value, range (a-b) or step (a/s)`);
  const first = value(where, spec, bounds[0] ?? "");
  if (bounds.length === 2) return walk(first, value(where, spec, bounds[1] ?? ""), step, spec);
  return stepText === undefined ? [first] : walk(first, spec.max, step, spec);
}

/** From `first` to `last` by `step`; when `last` is below `first` the range wraps past the field's end. */
function walk(first: number, last: number, step: number, spec: FieldSpec): number[] {
  const size = spec.max - spec.min + 1;
  const span = (((last - first) % size) + size) % size;
  const out: number[] = [];
  for (let offset = 0; offset <= span; offset += step) {
    const v = first + offset;
    out.push(v > spec.max ? v - size : v);
  }
  return out;
}

/** A number or (month, day-of-week) a three-letter name, within the field's range. */
function value(where: string, spec: FieldSpec, text: string): number {
  const index = spec.names?.indexOf(text.toUpperCase()) ?? -1;
  if (index >= 0) return index + 1;
  if (!/^\d+$/.test(text)) {
    const names = spec.names ? `, or a name ${spec.names[0]}-${spec.names.at(-1)}` : "";
    fail(where, spec, `${JSON.stringify(text)} is not a number${names}`);
  }
  const n = Number(text);
  if (n < spec.min || n > spec.max)
    fail(where, spec, `${n} is out of range ${spec.min}-${spec.max}`);
  return n;
}

/** Day-of-month: plain days, or `L` (last day), `LW` (last weekday), `nW` (weekday nearest day n). */
function daysOfMonth(where: string, field: string): string {
  const spec = FIELDS.dayOfMonth;
  const out: string[] = [];
  for (const item of splitList(where, spec, field)) {
    const upper = item.toUpperCase();
    if (upper === "L" || upper === "LW") out.push(upper);
    else if (/^\d+W$/.test(upper)) out.push(`${value(where, spec, upper.slice(0, -1))}W`);
    else if (/^L-/.test(upper))
      fail(where, spec, `${item}: L-n is not AWS syntax; write the days, or L for the last one`);
    else out.push(...expandItem(where, spec, item).map(String));
  }
  return [...new Set(out)].join(",");
}

/**
 * Day-of-week: plain days (1 = SUN ... 7 = SAT, as AWS numbers them), `L` (the last day
 * of the week, SAT), `nL` (the last day n of the month: `6L` the last Friday), `n#k` (the
 * k-th day n of the month: `2#1` the first Monday). Written out 0-based for node-cron.
 */
function daysOfWeek(where: string, field: string): string {
  const spec = FIELDS.dayOfWeek;
  const out: string[] = [];
  for (const item of splitList(where, spec, field)) {
    const upper = item.toUpperCase();
    const nth = /^(\w+)#(\w+)$/.exec(upper);
    if (upper === "L") out.push(String(spec.max - 1));
    else if (nth) {
      const k = nth[2] ?? "";
      if (!/^[1-5]$/.test(k)) fail(where, spec, `${item}: the week after # must be 1 to 5`);
      out.push(`${value(where, spec, nth[1] ?? "") - 1}#${k}`);
    } else if (/^\w+L$/.test(upper)) out.push(`${value(where, spec, upper.slice(0, -1)) - 1}L`);
    else out.push(...expandItem(where, spec, item).map((day) => String(day - 1)));
  }
  return [...new Set(out)].join(",");
}
