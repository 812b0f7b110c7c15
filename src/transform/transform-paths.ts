/**
 * Paths and predicates, compiled: jsonata's step-by-step evaluation of `a.b[c].d` over
 * sequences (each step on every item, one level of flattening, the last step's array kept
 * whole), the `[...]` filter, `*` and `**`, and a direct walk for the common path of names
 * over objects that hands over to the step-by-step evaluation as soon as an array turns up.
 */
import { MAX_TRANSFORM_SEQUENCE } from "./transform-limits.js";
import {
  checkNode,
  unsupported,
  type AstFilter,
  type AstNode,
  type CompileNode,
  type CompileState,
  type Env,
  type Evaluator,
} from "./transform-ast.js";
import {
  append,
  createSequence,
  flatten,
  isArrayOfNumbers,
  isFunction,
  isNumeric,
  isSequence,
  JsonataCodeError,
  pushItem,
  sequenceOf,
  tick,
  toBoolean,
  type Sequence,
} from "./transform-values.js";

/** A predicate `[...]`: a literal index, or an expression tried on every item. */
export interface CompiledFilter {
  readonly index: number | undefined;
  readonly evaluate: Evaluator | undefined;
}

interface CompiledStep {
  readonly evaluate: Evaluator;
  readonly stages: readonly CompiledFilter[];
  readonly consarray: boolean;
}

export function compileFilter(
  filter: AstFilter,
  state: CompileState,
  depth: number,
  compileNode: CompileNode,
): CompiledFilter {
  if (filter.type !== "filter") unsupported(`${filter.type} stages`);
  // jsonata takes a literal number as an index without evaluating it (or its own predicates).
  if (filter.expr.type === "number") {
    checkNode(filter.expr, state, depth + 1);
    return { index: filter.expr.value as number, evaluate: undefined };
  }
  return { index: undefined, evaluate: compileNode(filter.expr, state, depth + 1) };
}

/** jsonata's `evaluateFilter`. */
export function applyFilter(filter: CompiledFilter, input: unknown, env: Env): unknown {
  let results: unknown = createSequence();
  const items: unknown[] = Array.isArray(input) ? input : sequenceOf(input);
  if (filter.evaluate === undefined) {
    let index = Math.floor(filter.index as number);
    if (index < 0) index = items.length + index;
    const item = items[index];
    if (item !== undefined) {
      if (Array.isArray(item)) results = item;
      else pushItem(results as Sequence, item);
    }
    return results;
  }
  for (let index = 0; index < items.length; index++) {
    tick(env.run);
    const item = items[index];
    let res = filter.evaluate(item, env);
    if (isNumeric(res)) res = [res];
    if (isArrayOfNumbers(res)) {
      for (const wanted of res) {
        let at = Math.floor(wanted);
        if (at < 0) at = items.length + at;
        if (at === index) pushItem(results as Sequence, item);
      }
    } else if (toBoolean(res)) {
      pushItem(results as Sequence, item);
    }
  }
  return results;
}

export function compilePath(
  node: AstNode,
  state: CompileState,
  depth: number,
  compileNode: CompileNode,
): Evaluator {
  const stepNodes = node.steps ?? [];
  const steps: CompiledStep[] = stepNodes.map((step) => ({
    evaluate: compileNode(step, state, depth + 1),
    stages: (step.stages ?? []).map((s) => compileFilter(s, state, depth + 1, compileNode)),
    consarray: step.consarray === true,
  }));
  const first = stepNodes[0] ?? unsupported("an empty path");
  const firstIsVariable = first.type === "variable";
  const keepSingletonArray = node.keepSingletonArray === true;
  const generic: Evaluator = (input, env) => {
    const inputSequence = Array.isArray(input) && !firstIsVariable ? input : sequenceOf(input);
    return evaluateSteps(steps, 0, inputSequence, keepSingletonArray, env);
  };

  // The common case, `data.customer.name` or `$v.sku`: names over objects, walked directly
  // until an array turns up, where jsonata's step-by-step evaluation takes over.
  const simple =
    stepNodes.length > (firstIsVariable ? 1 : 0) &&
    !keepSingletonArray &&
    node.keepArray !== true &&
    stepNodes.every(
      (step, i) =>
        (step.type === "name" || (i === 0 && step.type === "variable")) &&
        step.keepArray !== true &&
        step.predicate === undefined &&
        step.stages === undefined,
    );
  if (!simple) return generic;
  const offset = firstIsVariable ? 1 : 0;
  const names = stepNodes.slice(offset).map((step) => step.value as string);
  const firstVariable = firstIsVariable ? (steps[0] as CompiledStep).evaluate : undefined;
  return (input, env) => {
    let value = firstVariable === undefined ? input : firstVariable(input, env);
    for (let k = 0; k < names.length; k++) {
      if (value === undefined) return undefined;
      if (!isPlainObject(value)) {
        // Names find nothing in a string, number, boolean or null.
        if (!Array.isArray(value)) return undefined;
        if (k === 0 && firstVariable === undefined) return generic(input, env);
        // What the previous step's flattening makes of an array: its items, or itself.
        const items = (value as Sequence).cons === true ? sequenceOf(value) : value;
        if (items.length === 0) return undefined;
        return evaluateSteps(steps, offset + k, items, false, env);
      }
      value = Object.prototype.hasOwnProperty.call(value, names[k] as string)
        ? (value as Record<string, unknown>)[names[k] as string]
        : undefined;
      // A sequence kept in an object would collapse as a step result: the long way.
      if (isSequence(value)) return generic(input, env);
    }
    return value;
  };
}

function isPlainObject(value: unknown): value is object {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !isFunction(value);
}

/**
 * jsonata's `evaluatePath` (without tuple streams), from step `from` on, given the sequence
 * that step receives.
 */
function evaluateSteps(
  steps: readonly CompiledStep[],
  from: number,
  firstInput: unknown,
  keepSingletonArray: boolean,
  env: Env,
): unknown {
  let inputSequence = firstInput;
  let resultSequence: unknown;
  for (let i = from; i < steps.length; i++) {
    const step = steps[i] as CompiledStep;
    if (i === 0 && step.consarray) {
      resultSequence = step.evaluate(inputSequence, env);
    } else {
      resultSequence = evaluateStep(step, inputSequence, env, i === steps.length - 1);
    }
    // jsonata reads `.length` of whatever the step gave (a string included; null throws).
    if (resultSequence === undefined || (resultSequence as { length: unknown }).length === 0) {
      break;
    }
    inputSequence = resultSequence;
  }
  if (keepSingletonArray) {
    let kept = resultSequence as Sequence;
    if (Array.isArray(kept) && kept.cons === true && kept.sequence !== true) {
      kept = sequenceOf(kept);
    }
    // Throws on undefined or a primitive, as jsonata's (strict-mode) assignment does.
    kept.keepSingleton = true;
    resultSequence = kept;
  }
  return resultSequence;
}

/**
 * jsonata's `evaluateStep`: the step on every item, then one level of flattening (an array
 * built by a constructor stays whole); one array alone as the last step's result is the
 * result. The results are flattened as they come rather than gathered first: the same output.
 */
function evaluateStep(step: CompiledStep, input: unknown, env: Env, lastStep: boolean): unknown {
  const items = input as ArrayLike<unknown>;
  const flattened = createSequence();
  let count = 0;
  let first: unknown;
  for (let i = 0; i < items.length; i++) {
    tick(env.run);
    let res = step.evaluate(items[i], env);
    for (const stage of step.stages) res = applyFilter(stage, res, env);
    if (res === undefined) continue;
    // jsonata's list of results has the size guard too.
    if (++count > MAX_TRANSFORM_SEQUENCE) {
      throw new JsonataCodeError("D2015", MAX_TRANSFORM_SEQUENCE);
    }
    if (count === 1) first = res;
    if (!Array.isArray(res) || (res as Sequence).cons === true) {
      pushItem(flattened, res);
    } else {
      for (let j = 0; j < res.length; j++) pushItem(flattened, res[j]);
    }
  }
  if (lastStep && count === 1 && Array.isArray(first) && !isSequence(first)) return first;
  return flattened;
}

export function evaluateWildcard(input: unknown, env: Env): unknown {
  let results: unknown[] = createSequence();
  let target = input;
  if (Array.isArray(target) && (target as Sequence).outerWrapper === true && target.length > 0) {
    target = target[0];
  }
  if (target !== null && typeof target === "object" && !isFunction(target)) {
    for (const key of Object.keys(target)) {
      tick(env.run);
      const value = (target as Record<string, unknown>)[key];
      // After an append, `results` is a plain array: its push has no size guard, as in jsonata.
      if (Array.isArray(value)) results = append(results, flatten(value), env.run) as unknown[];
      else results.push(value);
    }
  }
  return results;
}

export function evaluateDescendants(input: unknown, env: Env): unknown {
  if (input === undefined) return undefined;
  const results = createSequence();
  const recurse = (value: unknown): void => {
    tick(env.run);
    if (Array.isArray(value)) {
      value.forEach((member: unknown) => recurse(member));
      return;
    }
    results.push(value);
    if (value !== null && typeof value === "object" && !isFunction(value)) {
      for (const key of Object.keys(value)) recurse((value as Record<string, unknown>)[key]);
    }
  };
  recurse(input);
  return results.length === 1 ? results[0] : results;
}
