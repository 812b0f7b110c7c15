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
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === "*") {
      if (text[i + 1] === "*") throw new Error(`consecutive wildcard characters at position ${i}`);
      segments.push(current);
      current = "";
    } else if (char === "\\") {
      const next = text[i + 1];
      if (next !== "*" && next !== "\\") {
        throw new Error(`invalid escape at position ${i}: only \\* and \\\\ are allowed`);
      }
      current += next;
      i++;
    } else {
      current += char;
    }
  }
  segments.push(current);
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
  const count = segments.length;
  const first = segments[0] ?? "";
  if (count === 1) return (value) => value === first;
  const last = segments[count - 1] ?? "";
  const middle = segments.slice(1, count - 1);
  const minLength = segments.reduce((sum, segment) => sum + segment.length, 0);
  if (middle.length === 0) {
    return (value) => value.length >= minLength && value.startsWith(first) && value.endsWith(last);
  }
  return (value) => {
    if (value.length < minLength || !value.startsWith(first) || !value.endsWith(last)) return false;
    const end = value.length - last.length;
    let position = first.length;
    for (let k = 0; k < middle.length; k++) {
      const segment = middle[k]!;
      const at = value.indexOf(segment, position);
      if (at < 0 || at + segment.length > end) return false;
      position = at + segment.length;
    }
    return true;
  };
}
