import assert from "node:assert/strict";
import { test } from "node:test";
import jsonata from "jsonata";
import { isRelaybusError } from "../../src/errors.js";
import {
  compileTransform,
  MAX_TRANSFORM_DEPTH,
  MAX_TRANSFORM_SEQUENCE,
} from "../../src/transform/compile-transform.js";
import type { JsonValue } from "../../src/types.js";

const limits = { maxTransformBytes: 8_192 };
const event: JsonValue = {
  specversion: "1.0",
  id: "e-1",
  source: "shop.orders",
  type: "order.created",
  data: { id: "o-7", total: 120, items: [{ sku: "a" }, { sku: "b" }] },
};

function rejectsWith(pattern: RegExp, code: "InvalidTransform" | "TransformTimeout" = "InvalidTransform") {
  return (error: unknown) => {
    assert.ok(isRelaybusError(error, code), `expected ${code}, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

test("transform - reshapes the event", async () => {
  const transform = compileTransform(
    '{"orderId": data.id, "amount": data.total, "skus": data.items.sku}',
    limits,
  );
  assert.deepEqual(await transform.evaluate(event, 100), {
    orderId: "o-7",
    amount: 120,
    skus: ["a", "b"],
  });
});

test("transform - an expression that yields nothing resolves to undefined", async () => {
  assert.equal(await compileTransform("data.missing", limits).evaluate(event, 100), undefined);
});

test("transform - results are plain JSON, not jsonata sequences", async () => {
  const result = await compileTransform("data.items.sku", limits).evaluate(event, 100);
  assert.deepEqual(result, ["a", "b"]);
  assert.equal(Object.getPrototypeOf(result), Array.prototype);
  assert.equal((result as unknown as { sequence?: boolean }).sequence, undefined);
});

test("transform - the same text compiles once", () => {
  const a = compileTransform("data.total * 2", limits);
  const b = compileTransform("data.total * 2", limits);
  assert.equal(a, b);
  assert.notEqual(a, compileTransform("data.total * 3", limits));
});

test("transform - a compile error is InvalidTransform with its position", () => {
  assert.throws(() => compileTransform('{"a": data.id', limits), rejectsWith(/position 13/));
  assert.throws(
    () => compileTransform("data.(", limits),
    rejectsWith(/does not compile: .*position/),
  );
});

test("transform - an empty expression is refused", () => {
  assert.throws(() => compileTransform("   ", limits), rejectsWith(/empty/));
});

test("transform - an expression over maxTransformBytes is refused", () => {
  const expression = `"${"x".repeat(100)}"`;
  assert.throws(
    () => compileTransform(expression, { maxTransformBytes: 64 }),
    (error) => isRelaybusError(error, "TransformTooLarge") && /102 bytes.*64/.test(error.message),
    "a size of its own code",
  );
  assert.doesNotThrow(() => compileTransform(expression, { maxTransformBytes: 102 }));
});

test("transform - self-application recursion stops within the time budget", async () => {
  const transform = compileTransform("(function($f){$f($f)})(function($f){$f($f)})", limits);
  const started = Date.now();
  await assert.rejects(transform.evaluate(event, 100), rejectsWith(/evaluation exceeded 100 ms/, "TransformTimeout"));
  assert.ok(Date.now() - started < 2_000, "stopped promptly");
});

test("transform - a big loop stops within the time budget", async () => {
  // $reduce is outside the compiled subset: this loop runs on the jsonata engine.
  const transform = compileTransform("$reduce([1..999999], function($a, $v){$a + $v * 2})", limits);
  assert.equal(transform.engine, "jsonata");
  await assert.rejects(transform.evaluate(event, 50), rejectsWith(/evaluation exceeded 50 ms/, "TransformTimeout"));
});

test("transform - a big loop on the compiled path stops within the time budget", async () => {
  const transform = compileTransform("$sum([1..999999].([1..999].($ * 2)))", limits);
  assert.equal(transform.engine, "compiled");
  const started = Date.now();
  await assert.rejects(transform.evaluate(event, 50), rejectsWith(/evaluation exceeded 50 ms/, "TransformTimeout"));
  assert.ok(Date.now() - started < 2_000, "stopped promptly");
});

test("transform - ranges built in one go count against the compiled path's budget", async () => {
  // Each item builds a range of 999,999 numbers natively; the clock is read after each.
  const transform = compileTransform("$count([1..999].($count([1..999999])))", limits);
  assert.equal(transform.engine, "compiled");
  const started = Date.now();
  await assert.rejects(transform.evaluate(event, 30), rejectsWith(/evaluation exceeded 30 ms/, "TransformTimeout"));
  assert.ok(Date.now() - started < 1_000, "stopped promptly");
});

test("transform - non-tail recursion stops at the depth guard", async () => {
  const transform = compileTransform("($f := function($n){1 + $f($n)}; $f(0))", limits);
  await assert.rejects(
    transform.evaluate(event, 10_000),
    rejectsWith(new RegExp(`exceeded ${MAX_TRANSFORM_DEPTH} nested steps`)),
  );
});

test("transform - bounded recursion still works", async () => {
  const transform = compileTransform(
    "($f := function($n){$n = 0 ? 0 : 1 + $f($n - 1)}; $f(100))",
    limits,
  );
  assert.equal(await transform.evaluate(event, 1_000), 100);
});

test("transform - a huge range is refused rather than built", async () => {
  await assert.rejects(
    compileTransform("$count([1..9999999])", limits).evaluate(event, 100),
    rejectsWith(/sequence/),
  );
});

test("transform - a timed-out evaluation does not affect a concurrent one", async () => {
  const slow = compileTransform("(function($f){$f($f)})(function($f){$f($f)})", limits);
  const quick = compileTransform('"ok " & source', limits);
  const [slowResult, quickResult] = await Promise.allSettled([
    slow.evaluate(event, 100),
    quick.evaluate(event, 100),
  ]);
  assert.equal(slowResult.status, "rejected");
  assert.deepEqual(quickResult, { status: "fulfilled", value: "ok shop.orders" });
});

test("transform - a runtime error is InvalidTransform", async () => {
  await assert.rejects(
    compileTransform('$error("boom")', limits).evaluate(event, 100),
    rejectsWith(/boom/),
  );
  await assert.rejects(
    compileTransform("source + 1", limits).evaluate(event, 100),
    rejectsWith(/failed/),
  );
});

test("transform - a function result is refused as not JSON", async () => {
  await assert.rejects(
    compileTransform("$string", limits).evaluate(event, 100),
    rejectsWith(/function/),
  );
  await assert.rejects(
    compileTransform('{"f": function($x){$x}}', limits).evaluate(event, 100),
    rejectsWith(/function/),
  );
});

test("transform - the typical target transform runs compiled", async () => {
  const transform = compileTransform(
    '{"orderId": data.id, "label": source & "/" & data.id, "skus": $map(data.items, function($i){ $uppercase($i.sku) })}',
    limits,
  );
  assert.equal(transform.engine, "compiled");
  assert.equal(transform.fallbackReason, undefined);
  assert.deepEqual(await transform.evaluate(event, 100), {
    orderId: "o-7",
    label: "shop.orders/o-7",
    skus: ["A", "B"],
  });
});

/** Expressions outside the compiled subset, with the reason each names. */
const outsideSubset: [string, RegExp][] = [
  ["data.items{sku: sku}", /grouping/],
  ["$match(data.id, /o-(\\d)/).groups[0]", /regex|\$match/],
  ["data.items^(>sku).sku", /sort/],
  ["$sort(data.items.sku)", /\$sort/],
  ['$reduce(data.items, function($a, $i){$a & $i.sku}, "")', /\$reduce/],
  ["($f := function($x){$x * 2}; $f(data.total))", /function value|lambda/],
  ["data.items@$i.$i.sku", /focus/],
  ['data.items#$n.{"n": $n}', /index binding/],
  ['$formatNumber(data.total, "#,##0.00")', /\$formatNumber/],
  ["$map(data.items.sku, $uppercase)", /function/],
  ['$now("[Y0001]")', /\$now with arguments/],
  ["($string := 1; $string)", /shadows/],
  ["data.items.%.id", /parent operator/],
  ['$ ~> |data|{"checked": true}|', /~> to something other than a function call/],
  ["$map(data.items, function($v)<o:s>{$v.sku})", /signature/],
  ["$substring(?, 0, 2)(data.id)", /named function/],
];

test("transform - expressions outside the subset run on the jsonata engine and still work", async () => {
  for (const [expression, reason] of outsideSubset) {
    const transform = compileTransform(expression, limits);
    assert.equal(transform.engine, "jsonata", expression);
    assert.match(transform.fallbackReason ?? "", reason, expression);
    const engine = jsonata(expression, { sequence: MAX_TRANSFORM_SEQUENCE });
    const expected: unknown = await engine.evaluate(event);
    const actual = await transform.evaluate(event, 1_000);
    assert.deepEqual(
      actual,
      expected === undefined ? undefined : JSON.parse(JSON.stringify(expected)),
      expression,
    );
  }
});

test("transform - a compiled evaluation that fails reports the engine's error", async () => {
  const transform = compileTransform('{"n": data.id + 1}', limits);
  assert.equal(transform.engine, "compiled");
  await assert.rejects(transform.evaluate(event, 100), (error: unknown) => {
    assert.ok(isRelaybusError(error, "InvalidTransform"));
    assert.equal(
      error.message,
      'transform failed: The left side of the "+" operator must evaluate to a number (at position 15, near "+", T2001)',
    );
    assert.equal((error.cause as { code?: string }).code, "T2001");
    return true;
  });
});

test("transform - $now() and $millis() on the compiled path: the evaluation's start, in ISO 8601", async () => {
  const transform = compileTransform(
    '{"now": $now(), "millis": $millis(), "again": $now()}',
    limits,
  );
  assert.equal(transform.engine, "compiled");
  const before = Date.now();
  const result = (await transform.evaluate(event, 100)) as {
    now: string;
    millis: number;
    again: string;
  };
  const after = Date.now();
  assert.ok(result.millis >= before && result.millis <= after);
  assert.equal(result.now, new Date(result.millis).toISOString());
  assert.equal(result.again, result.now);
  // The engine formats the same instant the same way.
  const engine = await jsonata("$now()").evaluate(null, undefined);
  assert.match(String(engine), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});
