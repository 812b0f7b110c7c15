// I-Regexp (RFC 9485): what the syntax accepts and refuses, and that the re2js translation and
// the plain definition (a Thompson automaton) give the same answers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { iRegexpMatches } from "../../src/patterns/i-regexp-reference.js";
import { compileIRegexp, parseIRegexp } from "../../src/patterns/i-regexp.js";

function bothMatch(regex: string, value: string): boolean {
  const tree = parseIRegexp(regex);
  const fast = compileIRegexp(tree)(value);
  const plain = iRegexpMatches(tree, value);
  assert.equal(fast, plain, `re2js and the definition disagree: ${JSON.stringify(regex)} on ${JSON.stringify(value)}`);
  return fast;
}

test("patterns i-regexp - accepts the RFC 9485 grammar", () => {
  const valid = [
    "", "a", "abc", "a|b|", "()", "(a|b)*c", "a+", "a?", "a{3}", "a{3,}", "a{3,5}", "a{0}", "a{007}",
    ".", "\\.", "\\n\\r\\t", "\\(\\)\\*\\+\\-\\.\\?\\[\\\\\\]\\^\\{\\|\\}",
    "[abc]", "[^abc]", "[a-z]", "[-a]", "[a-]", "[-]", "[--]", "[^-]", "[\\--a]", "[\\]]", "[.*+?(){}|^$]",
    "\\p{L}", "\\P{Lu}", "[\\p{Nd}a-f]", "[^\\P{L}]", "\\p{Cn}", "\\p{Pi}\\p{Pf}",
    "^", "$", "#", " ", "x,y", "é", "😀", "[😀-😎]", "a/b", "@", "~",
  ];
  for (const regex of valid) assert.doesNotThrow(() => parseIRegexp(regex), regex);
});

test("patterns i-regexp - refuses what is not I-Regexp, naming what and where", () => {
  const invalid: [string, RegExp][] = [
    ["\\d", /position 0: \\d is not I-Regexp; write \[0-9\]/],
    ["a\\w", /position 1: \\w is not I-Regexp/],
    ["\\s", /\\s is not I-Regexp/],
    ["\\b", /word boundary/],
    ["\\x41", /\\x escapes are not I-Regexp/],
    ["\\u0041", /\\u escapes are not I-Regexp/],
    ["\\$", /\\\$ is not an I-Regexp escape/],
    ["(?i)a", /\(\? groups/],
    ["(?=a)", /\(\? groups/],
    ["(a)\\1", /backreferences/],
    ["a*?", /position 2: quantifier \? cannot follow another quantifier/],
    ["a+*", /cannot follow another quantifier/],
    ["a{2}{3}", /cannot follow another quantifier/],
    ["*a", /position 0: quantifier \* has nothing to repeat/],
    ["a|*", /nothing to repeat/],
    ["a{", /\{ starts a repetition/],
    ["a{,2}", /\{ starts a repetition/],
    ["a{x}", /\{ starts a repetition/],
    ["a{2", /\{ starts a repetition/],
    ["a{3,1}", /maximum below its minimum/],
    ["a{99999999999999999999}", /repetition count 99999999999999999999 is more than 1000/],
    ["a}", /\} must be escaped as \\\}/],
    ["a]", /\] must be escaped/],
    ["(a", /unclosed \(/],
    ["a)", /position 1: unmatched \)/],
    ["[a", /unclosed \[/],
    ["[]", /empty class/],
    ["[^]", /empty class/],
    ["[a-b-c]", /- inside a class must come first or last/],
    ["[a--]", /- inside a class must come first or last/],
    ["[z-a]", /range U\+007A-U\+0061 runs backwards/],
    ["[[a]]", /\[ inside a class must be escaped/],
    ["[a-\\p{L}]", /a range cannot end in a category/],
    ["[\\d]", /\\d is not I-Regexp/],
    ["\\p{Greek}", /general category/],
    ["\\p{Cs}", /general category/],
    ["\\pL", /needs a category in braces/],
    ["\\p{L", /unclosed \\p\{/],
    ["abc\\", /ends in a lone \\/],
  ];
  for (const [regex, message] of invalid) {
    assert.throws(() => parseIRegexp(regex), (error: Error) => {
      assert.match(error.message, message, regex);
      return true;
    });
  }
});

test("patterns i-regexp - whole-value matching, characters and classes", () => {
  const cases: [string, string, boolean][] = [
    ["abc", "abc", true],
    ["abc", "abcd", false],
    ["b", "abc", false],
    ["a|b|", "", true],
    ["(a|b)*c", "ababc", true],
    ["(a|b)*c", "abab", false],
    ["a{3}", "aaa", true],
    ["a{3}", "aaaa", false],
    ["a{2,}", "aaaaaa", true],
    ["a{0}", "", true],
    ["(a*)*", "", true],
    ["(a?){3}a{3}", "aaa", true],
    [".", "\n", false],
    [".", "\r", false],
    [".", "\t", true],
    ["[^a]", "\n", true], // only . leaves out \n and \r; a negated class does not
    ["\\n", "\n", true],
    ["[\\--a]", "Z", true],
    ["[-a]", "-", true],
    ["\\p{Nd}+", "١٢٣", true], // Arabic-Indic digits are Nd
    ["[0-9]+", "١٢٣", false],
    ["\\P{L}", "1", true],
    ["\\p{Cn}", "\u0378", true], // unassigned
    ["\\p{C}", "\u0378", true], // C includes Cn
    ["\\p{Co}", "\ue000", true],
    ["[😀-😎]", "😃", true],
    ["[😀-😎]", "😏", false],
    ["..", "😀", false], // one character, two UTF-16 code units
    ["$", "$", true],
    ["x ", "x ", true],
  ];
  for (const [regex, value, expected] of cases) {
    assert.equal(bothMatch(regex, value), expected, `${JSON.stringify(regex)} on ${JSON.stringify(value)}`);
  }
});

test("patterns i-regexp - both matchers take time linear in the value, whatever the regex", () => {
  // The explanation of a match runs the reference definition on API input, so it must not
  // blow up either: nested stars, overlapping alternatives and the largest counted repetitions.
  const hostile = ["(a*)*b", "(a|aa)*b", "(a|a)*c", "(x+x+)+y", "(.*a){12}", "(a?){300}a{300}", "((a{0,7}){0,7}){0,7}b"];
  const value = `${"a".repeat(20_000)}!`;
  for (const regex of hostile) {
    const tree = parseIRegexp(regex);
    const started = performance.now();
    assert.equal(compileIRegexp(tree)(value), false, regex);
    assert.equal(iRegexpMatches(tree, value), false, regex);
    const ms = performance.now() - started;
    assert.ok(ms < 5000, `${regex}: ${Math.round(ms)} ms`);
  }
});
