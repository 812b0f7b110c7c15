/**
 * Property: on random documents, and on expressions assembled at random from the compiled
 * subset's grammar, the compiled closures give exactly the jsonata engine's output, or fail
 * where it fails with the same error code.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import jsonata from "jsonata";
import { compileTransform, MAX_TRANSFORM_SEQUENCE } from "../../src/transform/compile-transform.js";
import { compileJsonataAst } from "../../src/transform/transform-compiler.js";
import { toJsonResult } from "../../src/transform/transform-output.js";
import { EngineRequired, JsonataCodeError } from "../../src/transform/transform-values.js";
import type { JsonValue } from "../../src/types.js";

const KEYS = ["a", "b", "id", "n", "s", "items"] as const;

const leaf: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constantFrom("", "a", "b", "x,y", "Héllo😀", " pad ", "42", "1e3", "0x1F"),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(0.1, 0.5, 1.5, -2.25, 1e21, 123456.789, 1 / 3),
  fc.boolean(),
  fc.constant(null),
);

const { json } = fc.letrec<{
  json: JsonValue;
  array: JsonValue[];
  object: Record<string, JsonValue>;
}>((tie) => ({
  json: fc.oneof({ depthSize: "small" }, leaf, tie("array"), tie("object")),
  array: fc.array(tie("json"), { maxLength: 3 }),
  object: fc.dictionary(fc.constantFrom(...KEYS), tie("json"), { maxKeys: 4 }),
}));

/** Documents shaped like events: an object, fields from the same few keys as the expressions. */
const documentArb: fc.Arbitrary<JsonValue> = fc.dictionary(fc.constantFrom(...KEYS), json, {
  minKeys: 1,
  maxKeys: 5,
});

const key = fc.constantFrom(...KEYS);
const literal = fc.constantFrom(
  "0", "1", "2", "-1", "0.5", "1.5", "100", '""', '"a"', '"x,y"', '"Héllo"', "true", "false", "null",
); // prettier-ignore
const binaryOperator = fc.constantFrom(
  "+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "&", "and", "or", "in",
); // prettier-ignore
const oneArgumentFunction = fc.constantFrom(
  "$string", "$length", "$uppercase", "$lowercase", "$trim", "$number", "$round", "$floor",
  "$ceil", "$abs", "$sum", "$count", "$max", "$min", "$average", "$exists", "$not", "$boolean",
  "$keys", "$reverse", "$distinct", "$type", "$join", "$append", "$merge", "$spread",
); // prettier-ignore
const twoArgumentFunction = fc.constantFrom(
  "$substring", "$substringBefore", "$substringAfter", "$contains", "$split", "$join",
  "$append", "$lookup", "$round", "$pad", "$power", "$string",
); // prettier-ignore

/** Expressions of the compiled subset's grammar, as text. */
const { expression } = fc.letrec<{
  expression: string;
  path: string;
  step: string;
  predicate: string;
  call: string;
}>((tie) => ({
  expression: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tie("path"),
    literal,
    fc.constantFrom("$", "$x", "$y", "$v", "$i"),
    fc
      .tuple(tie("expression"), binaryOperator, tie("expression"))
      .map(([l, op, r]) => `(${l} ${op} ${r})`),
    tie("expression").map((e) => `-${e}`),
    tie("call"),
    fc
      .tuple(tie("expression"), tie("expression"), fc.option(tie("expression")))
      .map(([c, t, e]) => (e === null ? `(${c} ? ${t})` : `(${c} ? ${t} : ${e})`)),
    fc.tuple(tie("expression"), tie("expression")).map(([a, b]) => `(${a} ?: ${b})`),
    fc.tuple(tie("expression"), tie("expression")).map(([a, b]) => `(${a} ?? ${b})`),
    fc.array(tie("expression"), { maxLength: 3 }).map((items) => `[${items.join(", ")}]`),
    fc
      .array(
        fc.tuple(
          fc.oneof(
            key.map((k) => `"${k}"`),
            tie("path"),
          ),
          tie("expression"),
        ),
        {
          maxLength: 3,
        },
      )
      .map((pairs) => `{${pairs.map(([k, v]) => `${k}: ${v}`).join(", ")}}`),
    fc
      .tuple(tie("expression"), tie("expression"))
      .map(([value, body]) => `($x := ${value}; ${body})`),
    tie("expression").map((e) => `(${e})[0]`),
    fc
      .tuple(fc.integer({ min: -1, max: 3 }), fc.integer({ min: -1, max: 3 }))
      .map(([from, to]) => `[${from}..${to}]`),
    fc
      .tuple(tie("expression"), tie("expression"), tie("expression"))
      .map(([x, y, body]) => `($x := ${x}; $y := ${y}; ${body})`),
  ),
  path: fc
    .tuple(
      fc.constantFrom("", "$.", "$$.", "$v."),
      fc.array(tie("step"), { minLength: 1, maxLength: 3 }),
    )
    .map(([start, steps]) => start + steps.join(".")),
  step: fc
    .tuple(fc.oneof({ weight: 6, arbitrary: key }, fc.constantFrom("*", "**")), tie("predicate"))
    .map(([k, p]) => k + p),
  predicate: fc.oneof(
    { depthSize: "small" },
    fc.constant(""),
    fc.constant(""),
    fc.integer({ min: -2, max: 2 }).map((i) => `[${i}]`),
    fc.constant("[]"),
    tie("expression").map((e) => `[${e}]`),
  ),
  call: fc.oneof(
    fc.tuple(oneArgumentFunction, tie("expression")).map(([f, a]) => `${f}(${a})`),
    fc
      .tuple(twoArgumentFunction, tie("expression"), tie("expression"))
      .map(([f, a, b]) => `${f}(${a}, ${b})`),
    fc.tuple(oneArgumentFunction, tie("path")).map(([f, p]) => `${p}.${f}()`),
    fc
      .tuple(tie("expression"), tie("expression"))
      .map(([list, body]) => `$map(${list}, function($v, $i){ ${body} })`),
    fc
      .tuple(tie("expression"), tie("expression"))
      .map(([list, body]) => `$filter(${list}, function($v){ ${body} })`),
    fc.tuple(tie("expression"), oneArgumentFunction).map(([e, f]) => `(${e} ~> ${f}())`),
  ),
}));

function referenceJson(result: unknown): unknown {
  if (result === undefined) return undefined;
  const text = JSON.stringify(result, (_key, value: unknown) => {
    if (typeof value === "function") throw new Error("function in result");
    return value;
  });
  return text === undefined ? undefined : JSON.parse(text);
}

type Outcome = { value: unknown } | { error: string };

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "(thrown)";
}

async function engineOutcome(text: string, input: JsonValue): Promise<Outcome> {
  try {
    const result: unknown = await jsonata(text, { sequence: MAX_TRANSFORM_SEQUENCE }).evaluate(
      input,
    );
    return { value: referenceJson(result) };
  } catch (error) {
    return { error: codeOf(error) };
  }
}

/** Whether the tree has an array or object constructor of two items or more. */
function hasConcurrentItems(node: unknown): boolean {
  if (typeof node !== "object" || node === null) return false;
  const n = node as { type?: unknown; value?: unknown; expressions?: unknown[]; lhs?: unknown };
  if (n.type === "unary" && n.value === "[" && (n.expressions?.length ?? 0) >= 2) return true;
  if (n.type === "unary" && n.value === "{" && Array.isArray(n.lhs) && n.lhs.length >= 2) {
    return true;
  }
  return Object.values(node).some((child) => hasConcurrentItems(child));
}

/** Parses, or undefined when the text is not JSONata (the generator can build such text). */
function parse(text: string): unknown {
  try {
    return jsonata(text).ast();
  } catch {
    return undefined;
  }
}

test("transform property - compiled output equals the engine's on random documents and expressions", async () => {
  let compiled = 0;
  let values = 0;
  let errors = 0;
  let reordered = 0;
  await fc.assert(
    fc.asyncProperty(expression, documentArb, async (text, input) => {
      const ast = parse(text);
      fc.pre(ast !== undefined);
      const outcome = compileJsonataAst(ast);
      if (!outcome.compiled) {
        // The only constructs the generator makes that the compiled path refuses.
        assert.match(
          outcome.reason,
          /keep array\) together with := bindings|a tail call inside a filtered expression/,
          text,
        );
        return;
      }
      compiled++;
      const expected = await engineOutcome(text, input);
      let actual: Outcome;
      try {
        actual = {
          value: toJsonResult(
            outcome.run(input, { deadlineMs: Date.now() + 5_000, timeoutMs: 5_000 }),
          ),
        };
      } catch (error) {
        assert.ok(
          !(error instanceof EngineRequired),
          `${text}: no marked objects in these documents`,
        );
        actual = { error: error instanceof JsonataCodeError ? error.code : codeOf(error) };
      }
      const where = `${text} on ${JSON.stringify(input)}`;
      if ("error" in actual && "error" in expected && actual.error !== expected.error) {
        // jsonata evaluates the items of an array or object constructor concurrently, and the
        // first to fail (by its count of awaits) gives the error; the compiled path fails on
        // the first in order. compileTransform has the engine report it: check that.
        assert.ok(
          hasConcurrentItems(ast),
          `${where}: ${actual.error} instead of ${expected.error}`,
        );
        const transform = compileTransform(text, { maxTransformBytes: 8_192 });
        await assert.rejects(transform.evaluate(input, 5_000), (error: Error) => {
          assert.equal((error.cause as { code?: string } | undefined)?.code, expected.error, where);
          return true;
        });
        reordered++;
        return;
      }
      assert.deepStrictEqual(actual, expected, where);
      if ("value" in expected) values++;
      else errors++;
    }),
    { numRuns: 3_000 },
  );
  // The generator must exercise both outcomes, mostly through the compiled path (a run of
  // 3,000 gives about 2,000 compiled, 1,800 values and 250 errors).
  assert.ok(compiled > 1_500, `${compiled} compiled`);
  assert.ok(values > 1_000, `${values} values`);
  assert.ok(errors > 100, `${errors} errors`);
  assert.ok(reordered < errors / 10, `${reordered} errors from concurrent items`);
});

test("transform property - a fixed transform on random documents, through compileTransform", async () => {
  const transforms = [
    '{"id": id, "first": items[0], "all": items, "n": $count(items), "s": $string(s), "kept": a.b[]}',
    '$map(items, function($v, $i){ {"i": $i, "v": $v, "t": $type($v)} })',
    'items[$type($) = "number" and $ > 0]',
    '$join($map(items, function($v){ $string($v) }), "|") & id',
    "**.a",
    "*.b",
  ];
  for (const text of transforms) {
    const transform = compileTransform(text, { maxTransformBytes: 8_192 });
    assert.equal(transform.engine, "compiled", text);
    await fc.assert(
      fc.asyncProperty(documentArb, async (input) => {
        const expected = await engineOutcome(text, input);
        if ("value" in expected) {
          assert.deepStrictEqual(await transform.evaluate(input, 5_000), expected.value);
        } else {
          await assert.rejects(transform.evaluate(input, 5_000), (error: Error) => {
            assert.equal((error.cause as { code?: string } | undefined)?.code, expected.error);
            return true;
          });
        }
      }),
      { numRuns: 200 },
    );
  }
});
