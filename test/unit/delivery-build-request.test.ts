// The one way a target's request is built (dispatcher, dry run, redrive): transform, then
// format, each failure with the reason the dispatcher dead-letters with.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildTargetRequest } from "../../src/delivery/build-request.js";
import { DEFAULT_FORMAT_OPTIONS } from "../../src/delivery/format-payload.js";
import type { RoutedTarget } from "../../src/delivery/router.js";
import { compileTransform } from "../../src/transform/compile-transform.js";
import type { StoredEvent } from "../../src/types.js";

const stored: StoredEvent = {
  bus: "default",
  offset: 7,
  receivedAtMs: 1_700_000_000_000,
  sizeBytes: 120,
  event: { specversion: "1.0", id: "e-1", source: "shop", type: "order.created", data: { total: 12 } },
} as unknown as StoredEvent;

function target(overrides: Partial<RoutedTarget>): RoutedTarget {
  return {
    rule: "r",
    targetId: "t",
    url: "http://example.com/hook",
    headers: {},
    timeoutMs: 1000,
    format: "data",
    retry: { maxAttempts: 1, maxAgeSeconds: 60, baseDelayMs: 10, factor: 2, maxDelayMs: 100 },
    ...overrides,
  };
}

const LIMITS = { maxTransformBytes: 4096 };
const options = { deliveryId: "d-1", nowMs: 1_700_000_000_000, transformTimeoutMs: 100, format: DEFAULT_FORMAT_OPTIONS };

test("build request - a transform's output is the body; a failing one gives the dead-letter reason", async () => {
  const ok = await buildTargetRequest(stored, target({ format: "transform", transform: compileTransform('{"doubled": data.total * 2}', LIMITS) }), options);
  assert.ok(ok.ok);
  assert.deepEqual(JSON.parse(ok.value.body), { doubled: 24 });
  assert.equal(ok.value.headers["webhook-id"], "d-1");

  const failing = await buildTargetRequest(stored, target({ format: "transform", transform: compileTransform('$error("nope")', LIMITS) }), options);
  assert.equal(failing.ok, false);
  assert.match(!failing.ok ? failing.reason : "", /^transform failed: nope/);

  const missing = await buildTargetRequest(stored, target({ format: "transform" }), options);
  assert.deepEqual(missing, { ok: false, reason: "format is transform but the target has no transform" });
});

test("build request - other formats need no transform", async () => {
  const built = await buildTargetRequest(stored, target({ format: "data" }), options);
  assert.ok(built.ok);
  assert.deepEqual(JSON.parse(built.value.body), { total: 12 });
});

test("build request - a transform past its budget fails with TransformTimeout, the code ending the reason", async () => {
  const slow = compileTransform("($f := function($n){ $n > 0 ? $f($n - 1) + $f($n - 1) : 0 }; $f(40))", LIMITS);
  const timedOut = await buildTargetRequest(stored, target({ format: "transform", transform: slow }), { ...options, transformTimeoutMs: 20 });
  assert.ok(!timedOut.ok);
  assert.equal(timedOut.code, "TransformTimeout");
  assert.equal(timedOut.reason, "transform failed: transform evaluation exceeded 20 ms (TransformTimeout)");
  // A failing expression keeps its reason as it was, with its code beside it.
  const failing = await buildTargetRequest(stored, target({ format: "transform", transform: compileTransform('$error("nope")', LIMITS) }), options);
  assert.ok(!failing.ok);
  assert.equal(failing.code, "InvalidTransform");
  assert.doesNotMatch(failing.reason, /TransformTimeout/);
});
