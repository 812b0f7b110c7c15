import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createReceiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

describe("control plane", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(async () => {
    await service.close();
  });

  const errorOf = async (response: Response) => ((await response.json()) as { error: { code: string; message: string } }).error;

  test("control plane - a wrong method on a known path is a 405 with Allow", async () => {
    const response = await fetch(`${service.url}/v1/buses`, { method: "PATCH" });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "GET, POST");
    assert.equal((await errorOf(response)).code, "MethodNotAllowed");
    const unknown = await fetch(`${service.url}/v1/nothing-here`);
    assert.equal(unknown.status, 404);
    assert.equal((await errorOf(unknown)).code, "RouteNotFound");
  });

  test("control plane - malformed percent-encoding in a path is a 400, not a 500", async () => {
    const response = await fetch(`${service.url}/v1/buses/%E0%A4%A`);
    assert.equal(response.status, 400);
    const error = await errorOf(response);
    assert.equal(error.code, "ValidationError");
    assert.match(error.message, /percent-encoding/);
  });

  test("control plane - a rule body that is not an object says what it got", async () => {
    const response = await service.post("/v1/buses/default/rules", [1]);
    assert.equal(response.status, 400);
    assert.match((await errorOf(response)).message, /body: must be a JSON object, got an array/);
  });

  test("control plane - webhook credentials are never shown back", async () => {
    const created = await service.post("/v1/buses/default/rules", {
      name: "secretive",
      pattern: { source: ["x"] },
      targets: [{ id: "t", webhook: { url: "http://127.0.0.1:1/", headers: { authorization: "Bearer s3cret", "x-tenant": "acme" } } }],
    });
    assert.equal(created.status, 201);
    for (const response of [created, await service.get("/v1/buses/default/rules/secretive"), await service.get("/v1/buses/default/rules")]) {
      const text = await response.text();
      assert.doesNotMatch(text, /s3cret/);
      assert.match(text, /"authorization":"\*\*\*"/);
      assert.match(text, /"x-tenant":"acme"/, "ordinary headers stay visible");
    }
  });

  test("control plane - a repeated query parameter is a ValidationError", async () => {
    const response = await service.get("/v1/buses/default/events?limit=1&limit=2");
    assert.equal(response.status, 400);
    assert.match((await errorOf(response)).message, /limit: give this query parameter at most once/);
  });

  test("control plane - a bus says how far dispatch has come: 0 before any event, its last offset once all are routed", async () => {
    const receiver = await createReceiver();
    try {
      assert.equal((await service.post("/v1/buses", { name: "cp-dispatch" })).status, 201);
      const rule = { name: "all", pattern: { source: ["cp.dispatch"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/hook` } }] };
      assert.equal((await service.post("/v1/buses/cp-dispatch/rules", rule)).status, 201);
      type BusOffsets = { lastOffset: number; dispatchedOffset: number };
      const offsets = async () => (await (await service.get("/v1/buses/cp-dispatch")).json()) as BusOffsets;
      const empty = await offsets();
      assert.deepEqual([empty.lastOffset, empty.dispatchedOffset], [0, 0]);

      const entries = Array.from({ length: 5 }, (_, i) => ({ EventBusName: "cp-dispatch", Source: "cp.dispatch", DetailType: "t", Detail: `{"i":${i}}` }));
      assert.equal((await service.post("/v1/events", { Entries: entries })).status, 200);
      await receiver.waitFor(5, 10_000, "/hook");
      let seen = await offsets();
      for (const deadline = Date.now() + 10_000; seen.dispatchedOffset !== 5 && Date.now() < deadline; seen = await offsets()) {
        assert.ok(seen.dispatchedOffset <= seen.lastOffset, JSON.stringify(seen));
        await sleep(20);
      }
      assert.deepEqual([seen.lastOffset, seen.dispatchedOffset], [5, 5]);
    } finally {
      await receiver.close();
    }
  });
});
