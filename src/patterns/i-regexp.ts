/**
 * The `regex` operator's language: I-Regexp (RFC 9485), a small regular-expression format
 * that means the same in every engine. It has characters, `.`, escapes (`\n`, `\.`, ...),
 * classes (`[a-z]`, `[^0-9]`), Unicode general categories (`\p{Lu}`, `\P{L}`), groups
 * `(...)`, alternation `|` and the quantifiers `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`; nothing
 * else: no anchors (`^` and `$` are ordinary characters), no `\d`/`\w`/`\s`, no
 * backreferences, lookaround, lazy quantifiers or flags.
 *
 * Matching follows RFC 9485: a regex matches a value when it matches the whole of it; `.` is
 * any character but `\n` and `\r`; characters are Unicode scalar values, so a value holding a
 * lone surrogate (possible in JSON: `"\ud800"`) is not a string I-Regexp can match, and never
 * matches. Categories are Unicode's general categories as the JavaScript engine knows them
 * (Node.js 20 and re2js both carry Unicode 17).
 *
 * {@link parseIRegexp} checks the syntax (naming what is not I-Regexp, and where) and returns
 * a tree. Two matchers read it: {@link compileIRegexp}, which translates the tree to RE2
 * syntax and runs it on re2js, whose automata take time linear in the value for every regex
 * (no backtracking, so no input can blow up); and `iRegexpMatches` in i-regexp-reference.ts,
 * the plain textbook definition the reference matcher uses, which shares nothing with re2js.
 *
 * @module
 */

import { RE2JS } from "re2js";

/** Longest `regex` operand by default, in characters (code points): `limits.maxPatternRegexLength`. */
export const MAX_REGEX_LENGTH = 256;

/**
 * Thrown by {@link parseIRegexp} for a regex longer than its limit: a size, not a syntax
 * error, so the pattern parser answers it `EventPatternTooLarge`.
 */
export class RegexTooLong extends Error {
  constructor(
    readonly length: number,
    readonly maxLength: number,
  ) {
    super(`the regex is ${length} characters, more than the limit of ${maxLength} (limits.maxPatternRegexLength)`);
    this.name = "RegexTooLong";
  }
}

/**
 * Largest count in `{n}`, `{n,}` or `{n,m}`: RE2's own limit, which it also applies to the
 * product of nested counts (`(a{100}){100}` is refused).
 */
export const MAX_REGEX_REPEAT = 1000;

/**
 * Largest compiled regex, as re2js's `programSize()` counts instructions (about one per
 * character, class and repetition copy: `[a-z]{100}` is 102). Matching time per character
 * grows with it; counted repetitions are what make it large.
 */
export const MAX_REGEX_PROGRAM_SIZE = 1000;

/** Unicode general categories I-Regexp allows in `\p{...}` and `\P{...}`. */
const CATEGORIES = new Set([
  "L", "Ll", "Lm", "Lo", "Lt", "Lu",
  "M", "Mc", "Me", "Mn",
  "N", "Nd", "Nl", "No",
  "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps",
  "Z", "Zl", "Zp", "Zs",
  "S", "Sc", "Sk", "Sm", "So",
  "C", "Cc", "Cf", "Cn", "Co",
]);

/** One member of a character class: a range of code points (inclusive) or a category. */
export type ClassMember =
  | { readonly type: "range"; readonly from: number; readonly to: number }
  | { readonly type: "category"; readonly name: string; readonly negated: boolean };

/**
 * A parsed I-Regexp. Every single-character atom is a class: a character is a one-code-point
 * range, `.` is `[^\n\r]`, `\p{L}` a one-category class.
 */
export type RegexNode =
  | { readonly type: "alternation"; readonly branches: readonly RegexNode[] }
  | { readonly type: "sequence"; readonly items: readonly RegexNode[] }
  /** `max` undefined: no upper bound. */
  | { readonly type: "repeat"; readonly item: RegexNode; readonly min: number; readonly max: number | undefined }
  | { readonly type: "class"; readonly negated: boolean; readonly members: readonly ClassMember[] };

const NEWLINE = 0x0a;
const RETURN = 0x0d;

/** Characters `\` may escape (SingleCharEsc), and what each escape stands for. */
const SINGLE_CHAR_ESCAPES = new Map<string, number>([
  ...[..."()*+-.?[\\]^{|}"].map((c): [string, number] => [c, c.codePointAt(0)!]),
  ["n", NEWLINE],
  ["r", RETURN],
  ["t", 0x09],
]);

/** Advice for escapes people bring from other regex flavours. */
const FOREIGN_ESCAPES: Record<string, string> = {
  d: "\\d is not I-Regexp; write [0-9]",
  D: "\\D is not I-Regexp; write [^0-9]",
  w: "\\w is not I-Regexp; write [a-zA-Z0-9_] or \\p{L}",
  W: "\\W is not I-Regexp; write a negated class such as [^a-zA-Z0-9_]",
  s: "\\s is not I-Regexp; write [ \\t\\n\\r]",
  S: "\\S is not I-Regexp; write [^ \\t\\n\\r]",
  b: "\\b (word boundary) is not I-Regexp",
  B: "\\B is not I-Regexp",
  i: "\\i is not I-Regexp",
  c: "\\c is not I-Regexp",
  u: "\\u escapes are not I-Regexp; write the character itself (JSON's \\u escape works)",
  x: "\\x escapes are not I-Regexp; write the character itself",
};

/** Characters that are not ordinary (NormalChar) outside a class, besides those with their own errors. */
const SPECIAL = new Set([..."()*+.?[\\]{|}"]);

function hex(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Recursive-descent parser over the code points of one regex, after RFC 9485's ABNF. */
class Parser {
  private readonly chars: string[];
  private position = 0;

  constructor(text: string) {
    this.chars = Array.from(text);
  }

  private fail(message: string, at = this.position): never {
    throw new Error(`at position ${at}: ${message}`);
  }

  private peek(offset = 0): string | undefined {
    return this.chars[this.position + offset];
  }

  parse(): RegexNode {
    this.chars.forEach((char, index) => {
      const code = char.codePointAt(0)!;
      if (code >= 0xd800 && code <= 0xdfff) this.fail(`lone surrogate ${hex(code)} is not a Unicode character`, index);
    });
    const tree = this.alternation();
    if (this.position < this.chars.length) this.fail("unmatched )"); // alternation() stops only at ")" or the end
    return tree;
  }

  private alternation(): RegexNode {
    const branches = [this.branch()];
    while (this.peek() === "|") {
      this.position++;
      branches.push(this.branch());
    }
    return branches.length === 1 ? branches[0]! : { type: "alternation", branches };
  }

  private branch(): RegexNode {
    const items: RegexNode[] = [];
    for (let char = this.peek(); char !== undefined && char !== "|" && char !== ")"; char = this.peek()) {
      items.push(this.piece());
    }
    return items.length === 1 ? items[0]! : { type: "sequence", items };
  }

  private piece(): RegexNode {
    const item = this.atom();
    const char = this.peek();
    let min: number;
    let max: number | undefined;
    if (char === "*") [min, max] = [0, undefined];
    else if (char === "+") [min, max] = [1, undefined];
    else if (char === "?") [min, max] = [0, 1];
    else if (char === "{") return this.counted(item);
    else return item;
    this.position++;
    this.noSecondQuantifier();
    return { type: "repeat", item, min, max };
  }

  private noSecondQuantifier(): void {
    const next = this.peek();
    if (next === "*" || next === "+" || next === "?" || next === "{") {
      this.fail(`quantifier ${next} cannot follow another quantifier (I-Regexp has no lazy or possessive forms); to repeat a repetition, group it: (a{2}){3}`);
    }
  }

  /** `{n}`, `{n,}` or `{n,m}`; the `{` is at the current position. */
  private counted(item: RegexNode): RegexNode {
    const start = this.position;
    this.position++;
    const min = this.count(start);
    let max: number | undefined = min;
    if (this.peek() === ",") {
      this.position++;
      max = this.peek() === "}" ? undefined : this.count(start);
    }
    if (this.peek() !== "}") this.fail("{ starts a repetition {n}, {n,} or {n,m}; write \\{ for a literal brace", start);
    this.position++;
    if (max !== undefined && max < min) this.fail(`repetition {${min},${max}} has its maximum below its minimum`, start);
    this.noSecondQuantifier();
    return { type: "repeat", item, min, max };
  }

  private count(start: number): number {
    let digits = "";
    for (let char = this.peek(); char !== undefined && char >= "0" && char <= "9"; char = this.peek()) {
      digits += char;
      this.position++;
    }
    if (digits === "") this.fail("{ starts a repetition {n}, {n,} or {n,m}; write \\{ for a literal brace", start);
    // Compare lengths before converting, so that a hundred digits cannot round to anything.
    const significant = digits.replace(/^0+(?=\d)/, "");
    if (significant.length > String(MAX_REGEX_REPEAT).length || Number(significant) > MAX_REGEX_REPEAT) {
      this.fail(`repetition count ${digits} is more than ${MAX_REGEX_REPEAT}`, start);
    }
    return Number(significant);
  }

  private atom(): RegexNode {
    const char = this.peek()!;
    const at = this.position;
    if (char === "(") {
      this.position++;
      if (this.peek() === "?") this.fail("(? groups (non-capturing, lookaround, named, flags) are not I-Regexp; plain ( ) groups only");
      const inner = this.alternation();
      if (this.peek() !== ")") this.fail("unclosed (", at);
      this.position++;
      return inner;
    }
    if (char === ".") {
      this.position++;
      return { type: "class", negated: true, members: [single(NEWLINE), single(RETURN)] };
    }
    if (char === "[") return this.classExpression();
    if (char === "\\") {
      const escaped = this.escape(false);
      return { type: "class", negated: false, members: [escaped] };
    }
    if (char === "*" || char === "+" || char === "?" || char === "{") this.fail(`quantifier ${char} has nothing to repeat; write \\${char} for the character`);
    if (SPECIAL.has(char)) this.fail(`${char} must be escaped as \\${char}`);
    this.position++;
    return { type: "class", negated: false, members: [single(char.codePointAt(0)!)] };
  }

  /** An escape at the current `\`: a single character, or (where allowed) a category. */
  private escape(inRange: boolean): ClassMember {
    const at = this.position;
    const char = this.peek(1);
    if (char === undefined) this.fail("the regex ends in a lone \\", at);
    const single = SINGLE_CHAR_ESCAPES.get(char);
    if (single !== undefined) {
      this.position += 2;
      return { type: "range", from: single, to: single };
    }
    if (char === "p" || char === "P") {
      if (inRange) this.fail(`a range cannot end in a category (\\${char}{...})`, at);
      this.position += 2;
      if (this.peek() !== "{") this.fail(`\\${char} needs a category in braces, such as \\${char}{Lu}`, at);
      const close = this.chars.indexOf("}", this.position);
      if (close < 0) this.fail(`unclosed \\${char}{`, at);
      const name = this.chars.slice(this.position + 1, close).join("");
      if (!CATEGORIES.has(name)) {
        this.fail(`\\${char}{${name}} is not I-Regexp: name a Unicode general category such as L, Lu, Nd or P (no blocks or scripts)`, at);
      }
      this.position = close + 1;
      return { type: "category", name, negated: char === "P" };
    }
    if (char >= "1" && char <= "9") this.fail(`\\${char}: backreferences are not I-Regexp`, at);
    return this.fail(FOREIGN_ESCAPES[char] ?? `\\${char} is not an I-Regexp escape; escape only ( ) * + - . ? [ \\ ] ^ { | } n r t`, at);
  }

  /** `[` [`^`] ( `-` / member ) *member [`-`] `]`, at the current `[`. */
  private classExpression(): RegexNode {
    const start = this.position;
    this.position++;
    let negated = false;
    if (this.peek() === "^") {
      negated = true;
      this.position++;
    }
    const members: ClassMember[] = [];
    if (this.peek() === "-") {
      members.push(single(0x2d));
      this.position++;
    }
    for (;;) {
      const char = this.peek();
      if (char === undefined) this.fail("unclosed [", start);
      if (char === "]") {
        if (members.length === 0) this.fail("empty class []; I-Regexp classes hold at least one character", start);
        this.position++;
        return { type: "class", negated, members };
      }
      if (char === "-") {
        if (this.peek(1) === "]") {
          members.push(single(0x2d));
          this.position++;
          continue;
        }
        this.fail("- inside a class must come first or last, or be escaped as \\-");
      }
      const member = this.classCharacter(false);
      if (member.type === "range" && this.peek() === "-" && this.peek(1) !== "]" && this.peek(1) !== undefined) {
        const dash = this.position;
        this.position++;
        const end = this.classCharacter(true);
        if (end.type !== "range") this.fail("a range cannot end in a category", dash);
        if (end.from < member.from) this.fail(`range ${hex(member.from)}-${hex(end.from)} runs backwards`, dash);
        members.push({ type: "range", from: member.from, to: end.from });
      } else {
        members.push(member);
      }
    }
  }

  /** One character inside a class (CCchar), or a category escape unless it would end a range. */
  private classCharacter(inRange: boolean): ClassMember {
    const char = this.peek();
    if (char === undefined) this.fail("unclosed [");
    if (char === "\\") return this.escape(inRange);
    if (char === "[") this.fail("[ inside a class must be escaped as \\[ (I-Regexp has no nested classes or subtraction)");
    if (char === "-") this.fail("- inside a class must come first or last, or be escaped as \\-");
    this.position++;
    return single(char.codePointAt(0)!);
  }
}

function single(codePoint: number): ClassMember {
  return { type: "range", from: codePoint, to: codePoint };
}

/**
 * Translates a tree to RE2 syntax. Every character is written as `\x{...}`, so no character of
 * the regex can mean something else to RE2 (`^`, `$`, `#` and spaces are literal in I-Regexp).
 */
function toRe2(node: RegexNode): string {
  switch (node.type) {
    case "alternation":
      return `(?:${node.branches.map(toRe2).join("|")})`;
    case "sequence":
      return `(?:${node.items.map(toRe2).join("")})`;
    case "repeat": {
      const item = `(?:${toRe2(node.item)})`;
      return `${item}{${node.min},${node.max ?? ""}}`;
    }
    case "class": {
      const members = node.members.map((member) => {
        if (member.type === "category") return `\\${member.negated ? "P" : "p"}{${member.name}}`;
        const from = `\\x{${member.from.toString(16)}}`;
        return member.from === member.to ? from : `${from}-\\x{${member.to.toString(16)}}`;
      });
      return `[${node.negated ? "^" : ""}${members.join("")}]`;
    }
  }
}

/** Compiled regexes by tree, so that parsing (which must measure the program) and compiling share one. */
const compiled = new WeakMap<RegexNode, RE2JS>();

/**
 * Compiled regexes by their RE2 source, most recent last, at most {@link RE2_CACHE_SIZE}.
 * Compiling costs about a quarter of a millisecond, and a reload parses every rule again, so
 * a regex many rules (or reloads) share compiles once. A compiled regex is immutable in
 * meaning and safe to share.
 */
const bySource = new Map<string, RE2JS>();
const RE2_CACHE_SIZE = 1024;

function compileRe2(source: string): RE2JS {
  let re = bySource.get(source);
  if (re) {
    bySource.delete(source);
  } else {
    re = RE2JS.compile(source);
    if (bySource.size >= RE2_CACHE_SIZE) bySource.delete(bySource.keys().next().value!);
  }
  bySource.set(source, re);
  return re;
}

/**
 * Checks `text` as an I-Regexp and returns its tree. Throws an `Error` saying what is not
 * I-Regexp and at which position (the caller adds the pattern path), or which limit the regex
 * passes: {@link MAX_REGEX_REPEAT}, {@link MAX_REGEX_PROGRAM_SIZE}; a {@link RegexTooLong}
 * past `maxLength` code points (default {@link MAX_REGEX_LENGTH}).
 */
export function parseIRegexp(text: string, maxLength: number = MAX_REGEX_LENGTH): RegexNode {
  const length = Array.from(text).length;
  if (length > maxLength) throw new RegexTooLong(length, maxLength);
  const tree = new Parser(text).parse();
  let re: RE2JS;
  try {
    re = compileRe2(toRe2(tree));
  } catch (error) {
    // RE2 refuses what would compile too large, such as nested counts whose product passes 1000.
    const reason = (error as Error).message;
    throw new Error(
      reason.includes("invalid repeat count")
        ? `nested repetition counts multiply to more than ${MAX_REGEX_REPEAT}`
        : `the regex is too large to compile: ${reason}`,
    );
  }
  const size = re.programSize();
  if (size > MAX_REGEX_PROGRAM_SIZE) {
    throw new Error(
      `the regex compiles to ${size} instructions, more than the limit of ${MAX_REGEX_PROGRAM_SIZE} (counted repetitions multiply)`,
    );
  }
  compiled.set(tree, re);
  return tree;
}

/** A lone surrogate: in a `u` regex, a surrogate code unit that is not half of a pair. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * Compiles a tree from {@link parseIRegexp} into a test of a whole string, in time linear in
 * the string's length (re2js's automata).
 */
export function compileIRegexp(tree: RegexNode): (value: string) => boolean {
  let re = compiled.get(tree);
  if (!re) {
    re = compileRe2(toRe2(tree));
    compiled.set(tree, re);
  }
  const program = re;
  return (value) => program.testExact(value) && !LONE_SURROGATE.test(value);
}
