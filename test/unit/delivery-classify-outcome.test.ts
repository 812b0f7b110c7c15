import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyOutcome, parseRetryAfter, type SendResult } from "../../src/delivery/classify-outcome.js";

test("classify - statuses and errors map to success, retryable or permanent", () => {
  const table: Array<[SendResult, string]> = [
    [{ status: 200, durationMs: 1 }, "success"],
    [{ status: 201, durationMs: 1 }, "success"],
    [{ status: 204, durationMs: 1 }, "success"],
    [{ status: 299, durationMs: 1 }, "success"],
    [{ status: 408, durationMs: 1 }, "retryable"],
    [{ status: 429, durationMs: 1 }, "retryable"],
    [{ status: 500, durationMs: 1 }, "retryable"],
    [{ status: 502, durationMs: 1 }, "retryable"],
    [{ status: 503, durationMs: 1 }, "retryable"],
    [{ status: 599, durationMs: 1 }, "retryable"],
    [{ error: "no answer", errorKind: "timeout", durationMs: 1 }, "retryable"],
    [{ error: "ECONNREFUSED", errorKind: "connection", durationMs: 1 }, "retryable"],
    [{ error: "bad header", errorKind: "invalid-request", durationMs: 1 }, "permanent"],
    [{ status: 301, durationMs: 1 }, "permanent"],
    [{ status: 400, durationMs: 1 }, "permanent"],
    [{ status: 401, durationMs: 1 }, "permanent"],
    [{ status: 403, durationMs: 1 }, "permanent"],
    [{ status: 404, durationMs: 1 }, "permanent"],
    [{ status: 410, durationMs: 1 }, "permanent"],
    [{ status: 413, durationMs: 1 }, "permanent"],
    [{ status: 422, durationMs: 1 }, "permanent"],
  ];
  for (const [result, expected] of table) {
    assert.equal(classifyOutcome(result).outcome, expected, JSON.stringify(result));
  }
});

test("classify - failures carry a one-line error naming the status or the error kind", () => {
  assert.deepEqual(classifyOutcome({ status: 200, durationMs: 1 }), { outcome: "success" });
  assert.deepEqual(classifyOutcome({ status: 400, error: "bad field x", durationMs: 1 }), {
    outcome: "permanent",
    error: "HTTP 400: bad field x",
  });
  assert.deepEqual(classifyOutcome({ error: "no complete answer within 10 ms", errorKind: "timeout", durationMs: 10 }), {
    outcome: "retryable",
    error: "timeout: no complete answer within 10 ms",
  });
});

test("classify - Retry-After travels with retryable outcomes only", () => {
  assert.equal(classifyOutcome({ status: 429, retryAfterMs: 3_000, durationMs: 1 }).retryAfterMs, 3_000);
  assert.equal(classifyOutcome({ status: 503, retryAfterMs: 0, durationMs: 1 }).retryAfterMs, 0);
  assert.equal(classifyOutcome({ status: 400, retryAfterMs: 3_000, durationMs: 1 }).retryAfterMs, undefined);
});

test("classify - Retry-After parses seconds and HTTP dates", () => {
  const nowMs = Date.UTC(2015, 9, 21, 7, 28, 0);
  assert.equal(parseRetryAfter("120", nowMs), 120_000);
  assert.equal(parseRetryAfter(" 0 ", nowMs), 0);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", nowMs), 30_000);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", nowMs), 0);
  assert.equal(parseRetryAfter(["5", "9"], nowMs), 5_000);
});

test("classify - an unreadable Retry-After is ignored", () => {
  // "1.5" and "-1" would parse as dates with Date.parse; they must not become delays.
  for (const value of [undefined, "", "-1", "1.5", "soon", "12:00"]) {
    assert.equal(parseRetryAfter(value, 0), undefined, String(value));
  }
});
