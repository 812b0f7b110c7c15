/**
 * The definition of I-Regexp matching that the reference matcher uses: Thompson's
 * construction, textbook and engine-free. The parsed tree becomes a nondeterministic automaton
 * (one state per character class, plus forks for `|` and repetition); matching follows the set
 * of states the value can reach, one character at a time, and succeeds when the value's end
 * can reach the final state. It shares only the parser with the compiled matcher (re2js), so
 * the property tests hold each to the other.
 *
 * The time is the value's length times the automaton's size, which the parser bounds (counted
 * repetitions are copied out, and `MAX_REGEX_PROGRAM_SIZE` caps them): linear in the value,
 * like re2js, and never the blow-up of backtracking. That matters because the explanation of
 * a match (explain-pattern.ts) runs this definition on API input.
 *
 * @module
 */

import type { RegexNode } from "./i-regexp.js";

type ClassNode = Extract<RegexNode, { type: "class" }>;

/** A state: consume one character of a class and go on, fork without consuming, or accept. */
type State =
  | { readonly type: "char"; readonly node: ClassNode; readonly next: number }
  | { type: "fork"; next: number[] }
  | { readonly type: "accept" };

interface Automaton {
  readonly states: State[];
  readonly start: number;
}

/**
 * Builds the states that match `node` and then go on to state `next`; returns the first one.
 * Built back to front, so every state's successors exist when it is made.
 */
function build(node: RegexNode, next: number, states: State[]): number {
  const add = (state: State): number => states.push(state) - 1;
  switch (node.type) {
    case "class":
      return add({ type: "char", node, next });
    case "sequence": {
      let start = next;
      for (let i = node.items.length - 1; i >= 0; i--) start = build(node.items[i]!, start, states);
      return start;
    }
    case "alternation":
      return add({ type: "fork", next: node.branches.map((branch) => build(branch, next, states)) });
    case "repeat": {
      let start = next;
      if (node.max === undefined) {
        // item*: a fork that either goes round the item (back to itself) or goes on.
        const loop: State = { type: "fork", next: [] };
        const at = add(loop);
        loop.next.push(build(node.item, at, states), next);
        start = at;
      } else {
        // (max - min) optional copies: item?item?... matches 0 to max - min items.
        for (let k = node.min; k < node.max; k++) start = add({ type: "fork", next: [build(node.item, start, states), start] });
      }
      for (let k = 0; k < node.min; k++) start = build(node.item, start, states);
      return start;
    }
  }
}

const automata = new WeakMap<RegexNode, Automaton>();

function automaton(tree: RegexNode): Automaton {
  let built = automata.get(tree);
  if (!built) {
    const states: State[] = [{ type: "accept" }];
    built = { states, start: build(tree, 0, states) };
    automata.set(tree, built);
  }
  return built;
}

/**
 * Adds to `out` the consuming and accepting states reachable from `index` without consuming.
 * `seen[i] === step` marks a state already reached in this step (a fork may lead back to
 * itself through an item that matches "", and two paths may meet).
 */
function close(states: readonly State[], index: number, step: number, seen: Int32Array, out: number[]): void {
  if (seen[index] === step) return;
  seen[index] = step;
  const state = states[index]!;
  if (state.type === "fork") for (const next of state.next) close(states, next, step, seen, out);
  else out.push(index);
}

/**
 * True when the I-Regexp `tree` (from `parseIRegexp`) matches the whole of `value`, as
 * RFC 9485 defines it; a value that is not a string of Unicode scalar values (it holds a lone
 * surrogate) never matches.
 */
export function iRegexpMatches(tree: RegexNode, value: string): boolean {
  const { states, start } = automaton(tree);
  const seen = new Int32Array(states.length).fill(-1);
  let step = 0;
  let current: number[] = [];
  close(states, start, step, seen, current);
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) return false;
    step++;
    const next: number[] = [];
    for (const index of current) {
      const state = states[index]!;
      if (state.type === "char" && classHas(state.node, code)) close(states, state.next, step, seen, next);
    }
    if (next.length === 0) return false;
    current = next;
  }
  return current.includes(0);
}

const categoryTests = new Map<string, RegExp>();

/** Whether code point `code` is in the class: in one of its members, or in none if negated. */
function classHas(node: ClassNode, code: number): boolean {
  const inMembers = node.members.some((member) => {
    if (member.type === "range") return code >= member.from && code <= member.to;
    let test = categoryTests.get(member.name);
    if (!test) {
      test = new RegExp(`^\\p{${member.name}}$`, "u"); // the JavaScript engine's Unicode tables
      categoryTests.set(member.name, test);
    }
    return test.test(String.fromCodePoint(code)) !== member.negated;
  });
  return inMembers !== node.negated;
}
