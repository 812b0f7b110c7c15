/**
 * Array and object constructors, compiled. jsonata flattens an item of an array constructor
 * into the array unless it is itself written as an array constructor; an object constructor
 * groups its input by key, one object per call when the keys are literals and the input one.
 */
import { MAX_TRANSFORM_SEQUENCE } from "./transform-limits.js";
import type { AstNode, CompileNode, CompileState, Env, Evaluator } from "./transform-ast.js";
import { append, charge, JsonataCodeError, sequenceOf, tick } from "./transform-values.js";

export function compileArrayConstructor(
  node: AstNode,
  state: CompileState,
  depth: number,
  compileNode: CompileNode,
): Evaluator {
  const itemNodes = node.expressions ?? [];
  const items = itemNodes.map((item) => compileNode(item, state, depth + 1));
  // jsonata keeps an item written as an array constructor whole, and flattens any other.
  const keepWhole = itemNodes.map((item) => item.value === "[");
  const consarray = node.consarray === true;
  return (input, env) => {
    const result: unknown[] = [];
    for (let i = 0; i < items.length; i++) {
      const value = (items[i] as Evaluator)(input, env);
      if (value === undefined) continue;
      if (keepWhole[i] === true) {
        result.push(value);
      } else if (Array.isArray(value)) {
        // jsonata appends (concat, with the size guard); pushing onto our own array is the same.
        if (result.length + value.length > MAX_TRANSFORM_SEQUENCE) {
          throw new JsonataCodeError("D2015", result.length + value.length);
        }
        charge(env.run, value.length);
        for (let j = 0; j < value.length; j++) result.push(value[j]);
      } else {
        if (result.length + 1 > MAX_TRANSFORM_SEQUENCE) {
          throw new JsonataCodeError("D2015", result.length + 1);
        }
        result.push(value);
      }
    }
    if (consarray) {
      Object.defineProperty(result, "cons", {
        enumerable: false,
        configurable: false,
        value: true,
      });
    }
    return result;
  };
}

interface CompiledPair {
  readonly key: Evaluator;
  readonly value: Evaluator;
}

export function compileObjectConstructor(
  node: AstNode,
  state: CompileState,
  depth: number,
  compileNode: CompileNode,
): Evaluator {
  const pairNodes = node.lhs as [AstNode, AstNode][];
  const pairs: CompiledPair[] = pairNodes.map(([key, value]) => ({
    key: compileNode(key, state, depth + 1),
    value: compileNode(value, state, depth + 1),
  }));
  const generic: Evaluator = (input, env) => evaluateObject(pairs, input, env);

  // Literal keys, all different and none reserved: one object per input, no grouping.
  const literalKeys = pairNodes.map(([key]) =>
    key.type === "string" &&
    Object.keys(key).every((k) => ["type", "value", "position"].includes(k))
      ? (key.value as string)
      : undefined,
  );
  const staticKeys =
    literalKeys.every(
      (k) => k !== undefined && k !== "_jsonata_lambda" && k !== "_jsonata_function",
    ) && new Set(literalKeys).size === literalKeys.length;
  if (!staticKeys) return generic;
  const keys = literalKeys as string[];
  const values = pairs.map((pair) => pair.value);
  // jsonata's objects have no prototype; one is only visible through a "__proto__" key, as the
  // prototype itself. Objects with a prototype are much faster to build.
  const bare = keys.includes("__proto__");
  return (input, env) => {
    if (Array.isArray(input)) return generic(input, env);
    const result = (bare ? Object.create(null) : {}) as Record<string, unknown>;
    for (let i = 0; i < values.length; i++) {
      const value = (values[i] as Evaluator)(input, env);
      if (value !== undefined) result[keys[i] as string] = value;
    }
    return result;
  };
}

/** jsonata's `evaluateGroupExpression` for an object constructor (no tuple streams). */
function evaluateObject(pairs: readonly CompiledPair[], input: unknown, env: Env): unknown {
  const result = Object.create(null) as Record<string, unknown>;
  const groups = Object.create(null) as Record<string, { data: unknown; exprIndex: number }>;
  const items: unknown[] = Array.isArray(input) ? input : sequenceOf(input);
  // jsonata pushes onto the input itself, an array of the document included.
  if (items.length === 0) items.push(undefined);
  for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
    tick(env.run);
    const item = items[itemIndex];
    for (let pairIndex = 0; pairIndex < pairs.length; pairIndex++) {
      const key = (pairs[pairIndex] as CompiledPair).key(item, env);
      if (typeof key !== "string" && key !== undefined) throw new JsonataCodeError("T1003", key);
      if (key === undefined) continue;
      if (key === "_jsonata_lambda" || key === "_jsonata_function") {
        throw new JsonataCodeError("D1013", key);
      }
      const group = groups[key];
      if (group !== undefined) {
        if (group.exprIndex !== pairIndex) throw new JsonataCodeError("D1009", key);
        group.data = append(group.data, item, env.run);
      } else {
        groups[key] = { data: item, exprIndex: pairIndex };
      }
    }
  }
  for (const key of Object.keys(groups)) {
    const group = groups[key] as { data: unknown; exprIndex: number };
    const value = (pairs[group.exprIndex] as CompiledPair).value(group.data, env);
    if (value !== undefined) result[key] = value;
  }
  return result;
}
