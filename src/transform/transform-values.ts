/**
 * JSONata's value model, reproduced for the compiled path: sequences, the truthiness, string
 * and equality rules, and field lookup. Each function follows the jsonata 2.x function of the
 * same name line for line, quirks included, because the compiled path must give exactly the
 * engine's output; where a rule looks odd (a sequence carries an own `push`, an object holding
 * `_jsonata_function: true` counts as a function), it is jsonata's, kept on purpose.
 */
import {
  MAX_TRANSFORM_SEQUENCE,
  timeBudgetExceeded,
  type EvaluationBudget,
} from "./transform-limits.js";

/**
 * A JSONata sequence: an array with flags. `sequence` marks arrays the evaluator built (they
 * collapse: empty to nothing, one item to the item); `keepSingleton` stops that for one item
 * (`[]` in an expression); `outerWrapper` wraps an array input; `cons` marks an array built by
 * an array constructor, which path steps do not flatten.
 */
export interface Sequence extends Array<unknown> {
  sequence?: boolean;
  keepSingleton?: boolean;
  outerWrapper?: boolean;
  cons?: boolean;
  tupleStream?: boolean;
}

/** The state of one compiled evaluation: the root input, the clock, the step counter. */
export interface RunState {
  /** The input document, what `$$` means. */
  readonly root: unknown;
  /** What `$millis()` answers: read once, at the first call, then the same all through. */
  nowMs: number | undefined;
  readonly budget: EvaluationBudget;
  /** Work done so far: loop iterations, and items built in one go (ranges, appends). */
  work: number;
  /** The `work` at which the clock is read next: every 1,024 units. */
  nextClockCheck: number;
}

/** A fresh run state for one evaluation. */
export function createRunState(root: unknown, budget: EvaluationBudget): RunState {
  return { root, nowMs: undefined, budget, work: 0, nextClockCheck: CLOCK_CHECK_INTERVAL };
}

const CLOCK_CHECK_INTERVAL = 1024;

/**
 * An evaluation error of the compiled path, carrying the code jsonata gives for the same
 * failure (`T2001`, `D3030`...). The message is jsonata's business: a failed compiled
 * evaluation is re-run on the engine, which reports it (see compile-transform.ts).
 */
export class JsonataCodeError extends Error {
  constructor(
    readonly code: string,
    readonly value?: unknown,
  ) {
    super(`jsonata ${code}`);
  }
}

/**
 * Thrown where the compiled path meets data whose treatment by jsonata it does not reproduce:
 * a JSON object marked as a jsonata function (`"_jsonata_function": true`) passed to a
 * function, or one marked as a tail call returned by one. jsonata then reads internals such
 * an object lacks; the evaluation is redone on the engine, which answers as it does.
 */
export class EngineRequired extends Error {
  constructor() {
    super("a JSON object marked as a jsonata function reached a function call");
  }
}

/** Throws EngineRequired for an object jsonata's function calls would take for a function. */
export function assertNotMarkedFunction(value: unknown): void {
  if (
    typeof value === "object" &&
    value !== null &&
    typeof value !== "function" &&
    isFunction(value)
  ) {
    throw new EngineRequired();
  }
}

/** Throws EngineRequired for a result jsonata's `apply` would take for a tail-call thunk. */
export function assertNotMarkedThunk(value: unknown): void {
  if (
    typeof value === "object" &&
    value !== null &&
    (value as { _jsonata_lambda?: unknown })._jsonata_lambda === true &&
    (value as { thunk?: unknown }).thunk === true
  ) {
    throw new EngineRequired();
  }
}

/** The evaluation's one instant, for `$now()` and `$millis()`. */
export function evaluationTime(run: RunState): number {
  run.nowMs ??= Date.now();
  return run.nowMs;
}

/** Counts one loop iteration against the budget; reads the clock every 1,024. */
export function tick(run: RunState): void {
  if (++run.work >= run.nextClockCheck) checkClock(run);
}

/** Counts `units` of work done at once (items of a range or an append). */
export function charge(run: RunState, units: number): void {
  run.work += units;
  if (run.work >= run.nextClockCheck) checkClock(run);
}

function checkClock(run: RunState): void {
  run.nextClockCheck = run.work + CLOCK_CHECK_INTERVAL;
  if (Date.now() > run.budget.deadlineMs) throw timeBudgetExceeded(run.budget);
}

/**
 * jsonata's sequences carry the size guard as an own `push` (and so show it to `*` and to
 * deep equality); ours do too, as one shared function.
 */
function guardedPush(this: Sequence, ...items: unknown[]): number {
  if (this.length + items.length > MAX_TRANSFORM_SEQUENCE) {
    throw new JsonataCodeError("D2015", MAX_TRANSFORM_SEQUENCE);
  }
  return Array.prototype.push.apply(this, items);
}

/** jsonata's `createSequence()`. */
export function createSequence(): Sequence {
  const sequence: Sequence = [];
  sequence.push = guardedPush;
  sequence.sequence = true;
  return sequence;
}

/** jsonata's `createSequence(item)`: a sequence of one item, even `undefined`. */
export function sequenceOf(item: unknown): Sequence {
  const sequence = createSequence();
  pushItem(sequence, item);
  return sequence;
}

/** `sequence.push(item)` with the size guard, without the rest-argument call. */
export function pushItem(sequence: Sequence, item: unknown): void {
  if (sequence.length >= MAX_TRANSFORM_SEQUENCE) {
    throw new JsonataCodeError("D2015", MAX_TRANSFORM_SEQUENCE);
  }
  sequence[sequence.length] = item;
}

export function isSequence(value: unknown): value is Sequence {
  return Array.isArray(value) && (value as Sequence).sequence === true;
}

/**
 * jsonata's `isFunction`: a function, or any object marked as a jsonata function or lambda,
 * including a plain JSON object that happens to hold `"_jsonata_function": true`.
 */
export function isFunction(value: unknown): boolean {
  if (typeof value === "function") return true;
  if (typeof value !== "object" || value === null) return false;
  const marked = value as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
  return marked._jsonata_function === true || marked._jsonata_lambda === true;
}

/** jsonata's `isNumeric`: a number that is not NaN; an infinite one is error D1001. */
export function isNumeric(value: unknown): value is number {
  if (typeof value !== "number") return false;
  if (Number.isNaN(value)) return false;
  if (!Number.isFinite(value)) throw new JsonataCodeError("D1001", value);
  return true;
}

export function isArrayOfNumbers(value: unknown): value is number[] {
  if (!Array.isArray(value)) return false;
  let all = true;
  // jsonata filters the whole array, so an infinite number anywhere throws.
  for (let i = 0; i < value.length; i++) if (!isNumeric(value[i])) all = false;
  return all;
}

/** jsonata's `utils.keys`. */
export function objectKeys(value: unknown): string[] {
  return typeof value === "object" && value !== null ? Object.keys(value) : [];
}

/** Applies jsonata's collapse to an evaluation result: no items, nothing; one item, the item. */
export function collapse(result: unknown, keepArray: boolean): unknown {
  if (Array.isArray(result) && (result as Sequence).sequence === true) {
    const sequence = result as Sequence;
    if (sequence.tupleStream === true) return result;
    if (keepArray) sequence.keepSingleton = true;
    if (sequence.length === 0) return undefined;
    if (sequence.length === 1) return sequence.keepSingleton === true ? sequence : sequence[0];
  }
  return result;
}

/** jsonata's `fn.lookup`: a field of an object, or of every object in an array, flattened. */
export function lookup(input: unknown, key: string, run: RunState): unknown {
  if (Array.isArray(input)) {
    const result = createSequence();
    for (let i = 0; i < input.length; i++) {
      tick(run);
      const found = lookup(input[i], key, run);
      if (found === undefined) continue;
      if (Array.isArray(found)) {
        for (let j = 0; j < found.length; j++) pushItem(result, found[j]);
      } else {
        pushItem(result, found);
      }
    }
    return result;
  }
  if (
    input !== null &&
    typeof input === "object" &&
    Object.prototype.hasOwnProperty.call(input, key) &&
    !isFunction(input)
  ) {
    return (input as Record<string, unknown>)[key];
  }
  return undefined;
}

/** jsonata's `fn.append`, with its size guard; the items copied count against the budget. */
export function append(first: unknown, second: unknown, run: RunState): unknown {
  if (first === undefined) return second;
  if (second === undefined) return first;
  const left: unknown[] = Array.isArray(first) ? first : sequenceOf(first);
  const right: unknown[] = Array.isArray(second) ? second : [second];
  if (left.length + right.length > MAX_TRANSFORM_SEQUENCE) {
    throw new JsonataCodeError("D2015", left.length + right.length);
  }
  charge(run, left.length + right.length);
  return left.concat(right);
}

/** jsonata's `fn.boolean`: undefined stays undefined. */
export function toBoolean(value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length === 1) return toBoolean(value[0]);
    if (value.length > 1) {
      let trues = 0;
      for (let i = 0; i < value.length; i++) if (toBoolean(value[i])) trues++;
      return trues > 0;
    }
    return false;
  }
  if (typeof value === "string") return value.length > 0;
  if (isNumeric(value)) return value !== 0;
  if (value !== null && typeof value === "object" && !isFunction(value)) {
    return objectKeys(value).length > 0;
  }
  return value === true;
}

/** `boolize` of jsonata's `and`/`or`: undefined is false. */
export function boolize(value: unknown): boolean {
  return toBoolean(value) ?? false;
}

/** jsonata's `fn.string`. */
export function toJsonataString(value: unknown, prettify = false): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return value;
  if (isFunction(value)) return "";
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new JsonataCodeError("D3001", value);
  }
  let target = value;
  if (Array.isArray(target) && (target as Sequence).outerWrapper === true) target = target[0];
  return JSON.stringify(
    target,
    (_key, inner: unknown) => {
      if (inner !== undefined && inner !== null && isNumeric(inner)) {
        return Number.isInteger(inner) ? inner : Number(inner.toPrecision(15));
      }
      return inner !== undefined && inner !== null && isFunction(inner) ? "" : inner;
    },
    prettify ? 2 : 0,
  );
}

/** jsonata's `utils.isDeepEqual` (own property names, so flags on arrays count). */
export function isDeepEqual(lhs: unknown, rhs: unknown): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs !== "object" || typeof rhs !== "object" || lhs === null || rhs === null) {
    return false;
  }
  if (Array.isArray(lhs) && Array.isArray(rhs)) {
    if (lhs.length !== rhs.length) return false;
    for (let i = 0; i < lhs.length; i++) if (!isDeepEqual(lhs[i], rhs[i])) return false;
    return true;
  }
  const lkeys = Object.getOwnPropertyNames(lhs).sort();
  const rkeys = Object.getOwnPropertyNames(rhs).sort();
  if (lkeys.length !== rkeys.length) return false;
  for (let i = 0; i < lkeys.length; i++) if (lkeys[i] !== rkeys[i]) return false;
  for (const key of lkeys) {
    const l = (lhs as Record<string, unknown>)[key];
    const r = (rhs as Record<string, unknown>)[key];
    if (!isDeepEqual(l, r)) return false;
  }
  return true;
}

/** jsonata's `flatten` (used by the `*` wildcard). */
export function flatten(value: unknown, into: unknown[] = []): unknown[] {
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) flatten(item, into);
  } else {
    into.push(value);
  }
  return into;
}

/** The number of Unicode code points, as jsonata counts string length. */
export function codePointLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
  return length;
}
