/**
 * Wall-clock time in an IANA time zone, and back to an instant. Schedules are written in
 * wall-clock time ("09:00 in Europe/Berlin"); timers and positions are instants (ms since
 * the epoch). Intl knows the zones' rules; this file only asks it, one formatter per zone.
 */

/** A wall-clock time: what a clock on the wall of that zone shows. `month` is 1 to 12. */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(timezone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timezone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      // h23, not hour12: false, which prints midnight as "24" on some ICU versions.
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timezone, formatter);
  }
  return formatter;
}

/**
 * Throws unless `timezone` is a time zone Intl knows: an IANA name such as "Europe/Berlin",
 * or "UTC". The message names the value and what is expected.
 */
export function assertTimeZone(timezone: string): void {
  try {
    formatterOf(timezone);
  } catch {
    throw new Error(
      `time zone ${JSON.stringify(timezone)} is not an IANA time zone name (such as "Europe/Berlin" or "UTC")`,
    );
  }
}

/** The wall-clock time at instant `ms` in `timezone` (to the second). */
export function wallTimeAt(ms: number, timezone: string): WallTime {
  const wall: WallTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatterOf(timezone).formatToParts(ms)) {
    if (part.type in wall) wall[part.type as keyof WallTime] = Number(part.value);
  }
  return wall;
}

/** The wall-clock time read as if it were UTC, in ms: the zone's offset is this minus the instant. */
function naiveMs(wall: WallTime): number {
  return Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
}

function sameWallTime(a: WallTime, b: WallTime): boolean {
  return (
    a.year === b.year &&
    a.month === b.month &&
    a.day === b.day &&
    a.hour === b.hour &&
    a.minute === b.minute &&
    a.second === b.second
  );
}

/** The zone's offset from UTC at instant `ms`, in ms (east positive). */
function offsetMsAt(ms: number, timezone: string): number {
  return naiveMs(wallTimeAt(ms, timezone)) - Math.floor(ms / 1000) * 1000;
}

/**
 * The first instant at which the clocks of `timezone` show `wall`, or undefined when they
 * never do (the hour skipped when daylight saving time starts). A wall time the clocks show
 * twice (the hour repeated when it ends) gives the earlier instant: schedules fire once then.
 *
 * The offsets a day before and a day after are the two the zone can have around a
 * transition; trying each and keeping those that read back to `wall` finds both passes.
 */
export function firstInstantOf(wall: WallTime, timezone: string): number | undefined {
  const naive = naiveMs(wall);
  const offsets = new Set([
    offsetMsAt(naive - DAY_MS, timezone),
    offsetMsAt(naive, timezone),
    offsetMsAt(naive + DAY_MS, timezone),
  ]);
  const instants = [...offsets].map((offset) => naive - offset).sort((a, b) => a - b);
  return instants.find((instant) => sameWallTime(wallTimeAt(instant, timezone), wall));
}
