// Which JetStream errors the start-up asks again about: only those a moment can cure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isNatsTransient } from "../../src/log/jetstream/nats-errors.js";

test("nats errors - unanswered requests, no responders and a stream store that could not be made are asked again", () => {
  assert.equal(isNatsTransient({ code: "TIMEOUT" }), true);
  assert.equal(isNatsTransient({ code: "503" }), true);
  // What nats-server 2.9.10 answered when an account's stream directory was removed under a create.
  const storeFailed = { code: "500", api_error: { code: 500, err_code: 10077, description: "error creating store for stream" } };
  assert.equal(isNatsTransient(storeFailed), true);
});

test("nats errors - other answers are final", () => {
  assert.equal(isNatsTransient({ code: "500", api_error: { code: 500, err_code: 10049, description: "stream name already in use" } }), false);
  assert.equal(isNatsTransient({ code: "404", api_error: { code: 404, err_code: 10059 } }), false);
  assert.equal(isNatsTransient({ code: "MAX_PAYLOAD_EXCEEDED" }), false);
  assert.equal(isNatsTransient(new Error("boom")), false);
  assert.equal(isNatsTransient(undefined), false);
});
