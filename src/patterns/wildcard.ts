/**
 * The `wildcard` operator: `*` matches any run of characters (including none), `\*` is a
 * literal star and `\\` a literal backslash; any other backslash is an error, as are two
 * consecutive `*` (event-ruler's `WildcardParser`).
 *
 * Matching works on the literal segments between the stars: the first must be a prefix, the
 * last a suffix, and the middle ones are found left to right, each at its earliest place. For
 * `*`-only globs the earliest place is always a safe choice, so there is no backtracking and
 * the cost is one pass of `indexOf` per segment: no regular expression, no blow-up.
 *
 * @module
 */

/**
 * The most `*` one wildcard may hold by default (`limits.maxPatternWildcardStars`).
 * EventBridge rejects wildcards it judges too complex (`*:*:*:*:*:event-bus/*` is a recorded
 * case) without publishing the measure; this limit is the rule LocalStack reproduces those
 * answers with. Relaybus' matcher is linear regardless.
 */
export const MAX_WILDCARDS_PER_VALUE = 5;

/**
 * Splits a wildcard operand into its literal segments (one more than there are `*`), with
 * escapes resolved. Throws an `Error` saying what is wrong (the caller adds the path),
 * including a wildcard of more than `maxStars` stars (default {@link MAX_WILDCARDS_PER_VALUE}).
 */
export function parseWildcard(text: string, maxStars: number = MAX_WILDCARDS_PER_VALUE): string[] {
  const segments: string[] = [];
  // Characters gather in a list joined once per segment: a string grown a character at a time
  // is a rope in V8, slow to compare and hash every time a segment is used.
  let current: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === "*") {
      if (text[i + 1] === "*") throw new Error(`consecutive wildcard characters at position ${i}`);
      segments.push(current.join(""));
      current = [];
    } else if (char === "\\") {
      const next = text[i + 1];
      if (next !== "*" && next !== "\\") {
        throw new Error(`invalid escape at position ${i}: only \\* and \\\\ are allowed`);
      }
      current.push(next);
      i++;
    } else {
      current.push(char);
    }
  }
  segments.push(current.join(""));
  if (segments.length - 1 > maxStars) {
    throw new Error(
      `wildcard is too complex: ${segments.length - 1} wildcard characters, at most ${maxStars} (limits.maxPatternWildcardStars)`,
    );
  }
  return segments;
}

/** A compiled wildcard: tests one string in time linear in its length (per segment). */
export type WildcardTest = (value: string) => boolean;

/** Compiles parsed segments (from {@link parseWildcard}) into a {@link WildcardTest}. */
export function compileWildcard(segments: readonly string[]): WildcardTest {
  const minLength = wildcardMinLength(segments);
  return (value) => wildcardHolds(value, segments, minLength);
}

/**
 * {@link wildcardHolds} for a wildcard laid out in the pattern machine, found by one of its
 * ends: its segments are `pool[refs[first]]` to `pool[refs[first + count - 1]]`, the first of
 * length `firstLength`. The end it was found by (the first segment when `byFirst`, else the
 * last) is known to match, and the caller has checked the minimum length; what is left is
 * the other end and the middle segments, in order.
 */
export function foundWildcardHolds(
  value: string,
  pool: readonly string[],
  refs: Int32Array,
  first: number,
  count: number,
  firstLength: number,
  byFirst: boolean,
): boolean {
  const last = pool[refs[first + count - 1]!]!;
  // One segment and no `*`: found by it, so equal when as long.
  if (count === 1) return value.length === last.length;
  if (byFirst ? !value.endsWith(last) : !value.startsWith(pool[refs[first]!]!)) return false;
  const end = value.length - last.length;
  let position = firstLength;
  for (let k = first + 1, stop = first + count - 1; k < stop; k++) {
    const segment = pool[refs[k]!]!;
    const at = value.indexOf(segment, position);
    if (at < 0 || at + segment.length > end) return false;
    position = at + segment.length;
  }
  return true;
}

/** The shortest value a wildcard of these segments can match: its literal characters. */
export function wildcardMinLength(segments: readonly string[]): number {
  return segments.reduce((sum, segment) => sum + segment.length, 0);
}

/**
 * Whether `value` matches the wildcard of `segments` (a `*` between each): with one segment
 * (no `*`), equal to it; else the first segment a prefix, the last a suffix and the middle
 * ones found in order, leftmost first. A plain function over plain data, so the pattern machine can test the wildcards it
 * indexes without a closure per wildcard.
 */
export function wildcardHolds(value: string, segments: readonly string[], minLength: number): boolean {
  if (segments.length === 1) return value === segments[0];
  const last = segments[segments.length - 1]!;
  if (value.length < minLength || !value.startsWith(segments[0]!) || !value.endsWith(last)) return false;
  const end = value.length - last.length;
  let position = segments[0]!.length;
  for (let k = 1; k < segments.length - 1; k++) {
    const segment = segments[k]!;
    const at = value.indexOf(segment, position);
    if (at < 0 || at + segment.length > end) return false;
    position = at + segment.length;
  }
  return true;
}
