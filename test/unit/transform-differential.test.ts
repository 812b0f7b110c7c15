/**
 * The compiled transform path against the jsonata engine, on a corpus of expressions and a few
 * documents: every expression must compile, and give exactly the engine's output (undefined,
 * sequences and number formatting included) or fail where the engine fails, with the same
 * jsonata error code. The compiled closures are checked directly (no engine behind them), and
 * through `compileTransform`, whose errors must be the engine's own.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import jsonata from "jsonata";
import { isRelaybusError } from "../../src/errors.js";
import {
  compileTransform,
  compileTransformOnEngine,
  MAX_TRANSFORM_SEQUENCE,
} from "../../src/transform/compile-transform.js";
import { compileJsonataAst } from "../../src/transform/transform-compiler.js";
import { toJsonResult } from "../../src/transform/transform-output.js";
import { EngineRequired, JsonataCodeError } from "../../src/transform/transform-values.js";
import type { JsonValue } from "../../src/types.js";

const limits = { maxTransformBytes: 8_192 };

const orderEvent: JsonValue = {
  specversion: "1.0",
  id: "e-1",
  source: "shop.orders",
  type: "order.created",
  data: {
    id: "o-7",
    total: 120.5,
    qty: 3,
    name: "  Big \t order\n ",
    num: "42",
    flag: true,
    nul: null,
    empty: [],
    tags: ["a"],
    customer: { name: "Ada", tier: "gold", "odd key": 1 },
    items: [
      { sku: "a", qty: 1, price: 9.99 },
      { sku: "b", qty: 2, price: 0.1, tags: ["x", "y"] },
      { sku: "c", qty: 5, price: 12, tags: [] },
    ],
    nested: [[1, 2], [3], [[4]]],
    deep: { x: 1, y: { x: 2, z: [{ x: 3 }] } },
  },
};

/** Arrays of one, a single object where the first has an array, strings where numbers were. */
const singleEvent: JsonValue = {
  specversion: "1.0",
  id: "e-2",
  source: "shop.orders",
  type: "order.updated",
  data: {
    id: "p-1",
    total: 0,
    qty: 0,
    name: "x",
    num: "0x1F",
    flag: false,
    tags: "a",
    customer: { name: "Bé😀", tier: "" },
    items: { sku: "solo", qty: 2, price: 3, tags: ["z"] },
    nested: [[1]],
    deep: { x: [1, [2]] },
  },
};

/** Almost nothing: every path is missing. */
const sparseEvent: JsonValue = { specversion: "1.0", id: "e-3", source: "s", type: "t", data: {} };

/** Odd values: an object jsonata takes for a function, numbers as text, nulls in arrays. */
const oddEvent: JsonValue = {
  id: "e-4",
  data: {
    id: 7,
    total: -2.5,
    qty: 1e21,
    num: "1e3",
    items: [{ sku: null, qty: "2", price: -1 }, null, [{ sku: "in-array", qty: 4 }]],
    o: { _jsonata_function: true, x: 1 },
    tags: [null, "", 0, false],
  },
};

/** An array as the whole input (jsonata wraps it so it counts as one value). */
const arrayInput: JsonValue = [
  { data: { id: "a-1", items: [{ sku: "q" }] } },
  { data: { id: "a-2" } },
];

const documents: [string, JsonValue][] = [
  ["order", orderEvent],
  ["single", singleEvent],
  ["sparse", sparseEvent],
  ["odd", oddEvent],
  ["array", arrayInput],
];

/** Expressions in the compiled subset. */
const corpus: string[] = [
  // paths, sequences and missing fields
  "data.id",
  "data.customer.name",
  "data.items.sku",
  "data.items[0].sku",
  "data.items[-1].sku",
  "data.items[1]",
  "data.items[5]",
  "data.items[qty > 1].sku",
  "data.items[qty > 1]",
  'data.items[sku = "a"].price',
  "data.items.tags",
  "data.items.tags[0]",
  "data.items.tags[]",
  "data.tags[]",
  "data.items[]",
  "data.items.sku[]",
  "data.missing",
  "data.missing.deeper",
  "data.missing[]",
  "data.nested",
  "data.nested[0]",
  "data.nested[0][1]",
  "data.nested.$",
  "data.items[[0, 2]].sku",
  "data.items[[0..1]].sku",
  "data.items[$count(tags) > 1].sku",
  "data.items[tags].sku",
  'data.items[tags = "x"].sku',
  "$.data.id",
  "$$.data.id",
  "data.items.($$.source)",
  "data.items.$",
  "data.*",
  "data.customer.*",
  "**.sku",
  "data.deep.**.x",
  "data.items.*",
  "data.items[0].*",
  "data.empty",
  "data.empty[0]",
  "data.nul",
  "data.nul.x",
  "data.flag",
  "data.items.(qty * price)",
  'data.items.{"s": sku, "t": qty * price}',
  "data.items.[sku, qty]",
  "[data.items.sku]",
  "[data.items.sku][0]",
  "data.items.sku[0]",
  "(data.items.sku)[0]",
  "(data.items.sku)[-1]",
  "(data.items)[1].sku",
  'data."odd key"',
  "data.customer.`odd key`",
  "data.o.x",
  "data.items[0].tags[0]",
  "data.items.tags.$",
  'data.items[sku in ["a", "b"]].qty',
  "data.items[$.qty > 1]",
  "data.items[qty > 1][0].sku",
  "data.items.qty[$ > 1]",
  "data.items[tags][0].sku",
  "data.items.*[0]",
  "data.items[0][]",
  '**[sku = "b"].qty',
  // array constructors
  "[1, 2, 3][0]",
  "[1, 2, 3][-1]",
  "[1, 2, 3][5]",
  "[[1, 2], [3]][0]",
  "[[1, 2], [3]].$",
  '["abc"][0].$uppercase()',
  '[{"a": 1}, {"a": 2}][0].a',
  '[{"a": 1}, {"a": 2}].a',
  "[data.id, data.total]",
  "[data.items]",
  "[[data.items.sku]]",
  "[data.missing, 1]",
  "[]",
  "{}",
  "[1..5]",
  "[1..0]",
  "[data.qty..5]",
  "$count([1..data.qty])",
  "[1.5..3]",
  "[1, 2][]",
  "[data.items.sku, data.items.qty]",
  // object constructors
  '{"orderId": data.id, "amount": data.total}',
  '{"a": data.missing}',
  "{data.id: data.total}",
  "{data.missing: 1}",
  "{data.total: 1}",
  '{"a": 1, "a": 2}',
  '{"_jsonata_lambda": 1}',
  "data.items.{sku: qty}",
  '{"k": data.items.sku}',
  '{"k": data.items[0].sku[]}',
  '{"nested": {"x": data.customer.name, "y": [data.total]}}',
  '{"1": 1, "b": 2, "0": 3}',
  '{"__proto__": data.id}',
  '{"a": [1], "b": [[1]], "c": [data.items.sku]}',
  // arithmetic, comparison, boolean, string operators
  "data.total + 1",
  "data.total - data.qty",
  "data.total * 2",
  "data.total / 4",
  "data.total % 7",
  "data.missing + 1",
  "data.id + 1",
  "1 + data.id",
  "1/0",
  '{"x": 1/0}',
  "[1/0]",
  "0/0",
  "-data.total",
  "-data.missing",
  "-data.id",
  "data.total > 100",
  "data.total >= 120.5",
  'data.id < "p"',
  "data.id < 1",
  "data.items < 1",
  "data.missing < 1",
  "data.total = 120.5",
  "data.items = data.items",
  '(data.customer = {"name": "Ada", "tier": "gold", "odd key": 1})',
  "data.missing = data.missing",
  "data.missing != 1",
  '"a" != "b"',
  "data.flag and data.total",
  "data.missing or 0",
  "data.items and true",
  'data.empty or ""',
  '"a" in data.tags',
  'data.id in ["o-7", "p-1"]',
  "1 in 1",
  "data.missing in [1]",
  'data.id & "-" & data.total',
  'data.items & ""',
  'data.customer & ""',
  '0.1 + 0.2 & ""',
  'data.missing & "x"',
  "data.flag & data.nul",
  '1e21 & "" & 1.5e-7',
  '(1/0) & ""',
  'data.items[0].sku & data.missing.x & "-"',
  "0.1 + 0.2",
  "data.total * 1.1",
  // conditions
  'data.total > 100 ? "big" : "small"',
  "data.missing ? 1 : 2",
  "data.missing ? 1",
  'data.items ? "yes"',
  "data.empty ? 1 : 2",
  'data.id ?: "none"',
  'data.missing ?: "none"',
  'data.missing ?? "d"',
  'data.nul ?? "d"',
  "data.flag ? data.items.sku : data.missing",
  "data.o ? 1 : 2",
  // blocks and variables
  "($x := data.total; $x * 2)",
  "($x := data.items.sku; $count($x))",
  "($x := 1; ($x := 2); $x)",
  "($x := 1; ($x := 2; $x))",
  "($a := data.items; $a[0].sku)",
  '($s := data.customer; {"n": $s.name, "t": $s.tier})',
  "($x := $x; $x)",
  "()",
  "(1; 2; 3)",
  "$missingVar",
  "$missingVar.x",
  // string functions
  "$string(data.total)",
  "$string(data.customer)",
  "$string(data.items, true)",
  "$string()",
  "$string(data.missing)",
  "$string(data.items.qty)",
  "$string(data.o)",
  "$string(0.1 + 0.2) & $string(1e-7) & $string(123456789012345678) & $string(-0)",
  "$length(data.id)",
  '$length("héllo😀")',
  "$length(data.total)",
  "$length()",
  "$substring(data.id, 1)",
  "$substring(data.id, -2)",
  "$substring(data.id, 0, 2)",
  '$substring("😀abc", 1, 2)',
  "$substring(data.id, 1, -1)",
  "$substring(data.id, -10, 3)",
  '$substringBefore(data.id, "-")',
  '$substringAfter(data.id, "-")',
  '$substringAfter(data.id, "zz")',
  "$uppercase(data.customer.name)",
  "$lowercase(data.missing)",
  "$lowercase(data.items.sku)",
  "data.items.$uppercase(sku)",
  "data.items.sku.$uppercase()",
  '"héllo😀" ~> $uppercase()',
  "$trim(data.name)",
  "$pad(data.id, 8)",
  '$pad(data.id, -8, "#")',
  '$pad(data.id, 6, "ab")',
  '$contains(data.id, "7")',
  '$contains(data.missing, "x")',
  '$split("a,b,c", ",")',
  '$split("a,b,c", ",", 2)',
  '$split(data.id, "")',
  '$split("a", ",", -1)',
  '$split("abc", "", 2.5)',
  '$join(data.items.sku, ",")',
  "$join(data.items.sku)",
  "$join(data.tags)",
  "$join(data.items.qty)",
  '$join("single")',
  '$join(data.items.sku[], "|")',
  '$replace(data.id, "o", "0")',
  '$replace("aaa", "a", "b", 2)',
  '$replace("x", "", "y")',
  '$base64encode("hi") & $base64decode("aGk=")',
  '$encodeUrlComponent("a b&c") & $encodeUrl("http://x/a b")',
  '$decodeUrlComponent("%E0%A4%A")',
  '$error("boom")',
  // number functions
  "$number(data.num)",
  '$number("0x1F")',
  '$number("1e3")',
  '$number("abc")',
  "$number(true)",
  "$number(data.missing)",
  '$number(" 1")',
  "$round(2.5) & $round(3.5) & $round(-2.5)",
  "$round(1.005, 2)",
  "$round(1234.5678, -2)",
  "$floor(-1.5) + $ceil(1.1) + $abs(-3)",
  "$sqrt(16)",
  "$sqrt(-1)",
  "$power(2, 10)",
  "$power(10, 400)",
  "$formatBase(255, 16)",
  "$formatBase(10, 40)",
  "$sum(data.items.price)",
  "$sum(data.items.(qty * price))",
  "$sum([])",
  "$sum(data.missing)",
  "$sum(data.items.sku)",
  "$sum(5)",
  "$count(data.items)",
  "$count(data.missing)",
  "$count(data.id)",
  "$count(data.items.tags)",
  "$max(data.items.price)",
  "$min([3, 1, 2])",
  "$average(data.items.qty)",
  "$max([])",
  "$count(data.items[price > 5 and qty < 3])",
  'data.items[qty = 2 or sku = "a"].sku',
  // other functions
  "$exists(data.id)",
  "$exists(data.missing)",
  "$exists(data.nul)",
  "$exists(data.o)",
  "$not(data.flag)",
  "$not(data.missing)",
  "$boolean(data.items)",
  '$boolean("")',
  "$boolean(data.empty)",
  "$boolean(0)",
  "$boolean({})",
  '$boolean([0, ""])',
  "$boolean(1/0)",
  "$keys(data)",
  "$keys(data.items)",
  "$keys(data.missing)",
  '$keys("x")',
  "$keys(data.items[0])[1]",
  '$lookup(data, "id")',
  '$lookup(data.items, "sku")',
  '$lookup(data.items, "missing")',
  '$append(data.items.sku, "z")',
  "$append(1, 2)",
  "$append(data.missing, 1)",
  "$append([1], [[2]])",
  "$merge(data.items)",
  '$merge([{"a": 1}, {"a": 2, "b": 3}])',
  "$reverse(data.items.sku)",
  '$reverse("x")',
  '$distinct([1, 2, 1, "1"])',
  "$distinct(data.items.tags)",
  "$type(data.total) & $type(data.nul) & $type(data.items) & $type(data)",
  "$type(data.missing)",
  "$spread(data.customer)",
  "$now() = $now()",
  "$millis() > 0",
  "$type($now()) & $type($millis())",
  // $map, $filter, ~>
  "$map(data.items, function($v){$v.sku})",
  "$map(data.items, function($v, $i){$i})",
  "$map(data.items, function($v, $i, $a){$count($a)})",
  "$map(data.items.sku, function($s){$uppercase($s)})",
  "$map([1, 2], function($v){$string()})",
  "$map([1, 2], function($v){$uppercase()})",
  "$map(data.missing, function($v){$v})",
  '$map(data.id, function($v){$v & "!"})',
  "$map(data.items, function($v){ $v.qty > 1 ? $v.sku })",
  "$map(data.items, function($v){ $v.tags })",
  "$map([1, 2], function($v){ $filter([$v], function($x){$x > 1}) })",
  "$map([1, 2], function($v){ ($filter([$v], function($x){$x > 1})) })",
  '$map(data.items, function($v){ {"sku": $v.sku, "n": $number($v.qty)} })',
  "$map(data.items, function(){ data.id })",
  "$map(data.items, function($v){ sku })",
  "$map(data.items, function($v){ $v.sku[] })",
  "$map(data.items, function($v){ $string($v.qty)[] })",
  "$map(data.items, function($v){ ($x := $v.qty; $x * 2) })",
  "$map(data.items, function($v){ $v.qty > 1 ? $uppercase($v.sku) : $lowercase($v.sku) })",
  "$map(data.items, function($v){ $map($v.tags, function($t){ $t & $v.sku }) })",
  "$sum($map(data.items, function($v){ $v.qty * $v.price }))",
  "$map(data.tags, function($t){$t})[]",
  "$filter(data.items, function($v){$v.qty > 1})",
  "$filter(data.items, function($v, $i){$i = 0})",
  "$filter([1, 2, 3, 4], function($v){$v % 2 = 0})",
  "$filter(data.missing, function($v){true})",
  "$filter(data.items, function($v){$v.qty > 1}).sku",
  "data.items ~> $count()",
  "data.id ~> $uppercase()",
  'data.items.sku ~> $join(",")',
  "data.items ~> $map(function($v){$v.sku})",
  "data.id ~> $substring(0, 2)[0]",
  '{"orderId": data.id, "customer": data.customer.name & " (" & data.customer.tier & ")", "lines": $map(data.items, function($i){ {"sku": $i.sku, "amount": $i.qty * $i.price} })}',
];

/** What the delivery path made of an engine result before: JSON, refusing functions. */
function referenceJson(result: unknown): unknown {
  if (result === undefined) return undefined;
  const text = JSON.stringify(result, (_key, value: unknown) => {
    const marked = value as { _jsonata_function?: unknown; _jsonata_lambda?: unknown } | null;
    if (
      typeof value === "function" ||
      (typeof marked === "object" &&
        marked !== null &&
        (marked._jsonata_function === true || marked._jsonata_lambda === true))
    ) {
      throw new Error("function in result");
    }
    return value;
  });
  return text === undefined ? undefined : JSON.parse(text);
}

type EngineOutcome = { value: unknown } | { error: string };
type Outcome = EngineOutcome | { deferred: true };

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : `(${(error as Error)?.constructor?.name ?? "thrown"})`;
}

async function engineOutcome(expression: string, input: JsonValue): Promise<EngineOutcome> {
  let result: unknown;
  try {
    result = await jsonata(expression, { sequence: MAX_TRANSFORM_SEQUENCE }).evaluate(input);
  } catch (error) {
    return { error: codeOf(error) };
  }
  try {
    return { value: referenceJson(result) };
  } catch {
    return { error: "function in result" };
  }
}

function compiledOutcome(expression: string, input: JsonValue): Outcome {
  const outcome = compileJsonataAst(jsonata(expression).ast());
  assert.ok(
    outcome.compiled,
    `${expression} should compile: ${outcome.compiled ? "" : outcome.reason}`,
  );
  let result: unknown;
  try {
    result = outcome.run(input, { deadlineMs: Date.now() + 5_000, timeoutMs: 5_000 });
  } catch (error) {
    if (error instanceof JsonataCodeError) return { error: error.code };
    if (error instanceof EngineRequired) return { deferred: true };
    return { error: codeOf(error) };
  }
  try {
    return { value: toJsonResult(result) };
  } catch {
    return { error: "function in result" };
  }
}

test("transform differential - the corpus is large and in the compiled subset", () => {
  assert.ok(corpus.length >= 150, `corpus has ${corpus.length} expressions`);
  assert.equal(new Set(corpus).size, corpus.length, "no expression twice");
  for (const expression of corpus) {
    const transform = compileTransform(expression, limits);
    assert.equal(transform.engine, "compiled", `${expression}: ${transform.fallbackReason ?? ""}`);
    assert.equal(transform.fallbackReason, undefined);
  }
});

test("transform differential - compiled closures give the engine's output or error code", async () => {
  let compared = 0;
  let errors = 0;
  const deferred: string[] = [];
  for (const expression of corpus) {
    for (const [name, input] of documents) {
      const expected = await engineOutcome(expression, input);
      const actual = compiledOutcome(expression, input);
      if ("deferred" in actual) {
        // Left to the engine on purpose (checked through compileTransform below).
        deferred.push(`${expression} on the ${name} document`);
        continue;
      }
      assert.deepStrictEqual(actual, expected, `${expression} on the ${name} document`);
      compared++;
      if ("error" in expected) errors++;
    }
  }
  // Only JSON objects marked as jsonata functions passed to a function are left to the engine.
  assert.deepEqual(deferred, [
    "$string(data.o) on the odd document",
    "$exists(data.o) on the odd document",
  ]);
  // Enough of both kinds that neither side of the comparison is vacuous.
  assert.ok(errors >= 40, `${errors} error outcomes`);
  assert.ok(compared - errors >= 600, `${compared - errors} value outcomes`);
});

test("transform differential - compileTransform gives the engine's output, and its errors", async () => {
  for (const expression of corpus) {
    const transform = compileTransform(expression, limits);
    const onEngine = compileTransformOnEngine(expression, limits);
    assert.equal(onEngine.engine, "jsonata");
    for (const [name, input] of documents) {
      const where = `${expression} on the ${name} document`;
      const expected = await settle(onEngine.evaluate(input, 5_000));
      const actual = await settle(transform.evaluate(input, 5_000));
      // Values equal; errors the same InvalidTransform with the same message (the engine's).
      assert.deepStrictEqual(actual, expected, where);
      if ("error" in expected) assert.equal(expected.error.code, "InvalidTransform", where);
    }
  }
});

async function settle(
  evaluation: Promise<JsonValue | undefined>,
): Promise<{ value: JsonValue | undefined } | { error: { code: string; message: string } }> {
  try {
    return { value: await evaluation };
  } catch (error) {
    assert.ok(isRelaybusError(error));
    return { error: { code: error.code, message: error.message } };
  }
}

test("transform differential - results never share structure with the input", async () => {
  const input = structuredClone(orderEvent);
  const result = (await compileTransform("data.customer", limits).evaluate(input, 100)) as {
    name: string;
  };
  result.name = "changed";
  assert.equal((input as { data: { customer: { name: string } } }).data.customer.name, "Ada");
});
