/**
 * Target pacing and health through a running service: `pacing` in rule files and API rules
 * (checked, resolved with the configured defaults), the status routes, and states that go
 * with their rule.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

const FILE_RULES = `bus: orders
rules:
  - name: paced
    pattern: {source: [shop.orders]}
    targets:
      - id: slow
        webhook: {url: "http://127.0.0.1:9/slow"}
        pacing:
          ratePerSecond: 2.5
          maxInFlight: 4
          circuitBreaker: {failureThreshold: 3, openSeconds: 900}
          disableAfterFailingSeconds: 3600
      - id: plain
        webhook: {url: "http://127.0.0.1:9/plain"}
      - id: unbroken
        webhook: {url: "http://127.0.0.1:9/unbroken"}
        pacing: {circuitBreaker: false}
`;

function apiRule(name: string, pacing?: unknown): Obj {
  return {
    name,
    pattern: { source: ["shop.orders"] },
    targets: [{ id: "hook", webhook: { url: "http://127.0.0.1:9/hook" }, ...(pacing === undefined ? {} : { pacing }) }],
  };
}

describe("target states through the service", () => {
  let service: TestService;

  before(async () => {
    service = await startTestService({
      rules: { "orders.yaml": FILE_RULES },
      config: {
        delivery: {
          circuitBreaker: { failureThreshold: 7, openSeconds: 20, maxOpenSeconds: 300 },
          disableAfterFailingSeconds: 86_400,
        },
      },
    });
  });
  after(async () => {
    await service.close();
  });

  async function json(response: Response): Promise<Obj> {
    return (await response.json()) as Obj;
  }

  test("pacing - a target's own fields win over the configured defaults, and a pause above the default max raises it", () => {
    assert.deepEqual(service.registry.findTarget("orders", "paced", "slow")?.pacing, {
      ratePerSecond: 2.5,
      maxInFlight: 4,
      circuitBreaker: { failureThreshold: 3, openMs: 900_000, maxOpenMs: 900_000 },
      disableAfterFailingSeconds: 3600,
    });
    assert.deepEqual(service.registry.findTarget("orders", "paced", "plain")?.pacing, {
      circuitBreaker: { failureThreshold: 7, openMs: 20_000, maxOpenMs: 300_000 },
      disableAfterFailingSeconds: 86_400,
    });
    assert.deepEqual(service.registry.findTarget("orders", "paced", "unbroken")?.pacing, {
      disableAfterFailingSeconds: 86_400,
    });
  });

  test("pacing - API rules take it, and bad values are InvalidRule naming the field", async () => {
    const created = await service.post("/v1/buses/orders/rules", apiRule("api-paced", { ratePerSecond: 100, circuitBreaker: { openSeconds: 5 } }));
    assert.equal(created.status, 201, JSON.stringify(await created.clone().json()));
    assert.deepEqual(service.registry.findTarget("orders", "api-paced", "hook")?.pacing?.circuitBreaker, {
      failureThreshold: 7,
      openMs: 5_000,
      maxOpenMs: 300_000,
    });
    const cases: [unknown, RegExp][] = [
      [{ ratePerSecond: 0 }, /\/targets\/0\/pacing\/ratePerSecond: must be > 0/],
      [{ ratePerSecond: 100_001 }, /ratePerSecond: must be <= 100000/],
      [{ maxInFlight: 0 }, /maxInFlight: must be >= 1/],
      [{ disableAfterFailingSeconds: 30 }, /disableAfterFailingSeconds: must be >= 60/],
      [{ circuitBreaker: true }, /circuitBreaker: must be false or an object, got true/],
      [{ circuitBreaker: { threshold: 3 } }, /circuitBreaker\/threshold: unknown key "threshold"/],
      [{ circuitBreaker: { openSeconds: 60, maxOpenSeconds: 30 } }, /maxOpenSeconds: must be at least openSeconds \(60\), got 30/],
      [{ burst: 5 }, /pacing\/burst: unknown key/],
    ];
    for (const [pacing, message] of cases) {
      const refused = await service.post("/v1/buses/orders/rules", apiRule("bad", pacing));
      const body = await json(refused);
      assert.equal(refused.status, 400, JSON.stringify(pacing));
      const error = body.error as Obj;
      assert.equal(error.code, "InvalidRule");
      assert.match(String(error.message), message);
    }
  });

  test("status - a target never touched is enabled; a disabled one is shown in its rule", async () => {
    const fresh = await json(await service.get("/v1/buses/orders/rules/paced/targets/slow/status"));
    assert.deepEqual(fresh, { state: "enabled" });
    const disabled = await json(await service.post("/v1/buses/orders/rules/paced/targets/slow:disable", {}));
    assert.equal(disabled.reason, "disabled through the API");
    const rule = await json(await service.get("/v1/buses/orders/rules/paced"));
    const statuses = rule.targetStatus as Record<string, Obj>;
    assert.deepEqual(Object.keys(statuses), ["slow", "plain", "unbroken"]);
    assert.equal(statuses.slow?.state, "disabled");
    assert.equal(statuses.plain?.state, "enabled");
    assert.equal((rule.definition as { targets: Obj[] }).targets[0]?.status, undefined, "the definition stays as written");
  });

  test("status - the state of a target survives a reload of the rule files", async () => {
    await service.post("/v1/buses/orders/rules/paced/targets/plain:disable", { reason: "kept over a reload" });
    const reload = await service.post("/v1/rules:reload", {});
    assert.equal(reload.status, 200);
    const status = await json(await service.get("/v1/buses/orders/rules/paced/targets/plain/status"));
    assert.equal(status.reason, "disabled through the API: kept over a reload");
    await service.post("/v1/buses/orders/rules/paced/targets/plain:enable", {});
  });

  test("status - deleting a rule deletes its targets' states: created again, it starts enabled", async () => {
    assert.equal((await service.post("/v1/buses/orders/rules", apiRule("short-lived"))).status, 201);
    const path = "/v1/buses/orders/rules/short-lived/targets/hook";
    await service.post(`${path}:disable`, { reason: "testing" });
    assert.equal((await json(await service.get(`${path}/status`))).state, "disabled");
    const deleted = await fetch(`${service.url}/v1/buses/orders/rules/short-lived`, { method: "DELETE" });
    assert.equal(deleted.status, 204);
    assert.equal(service.storage.targetStates.get({ bus: "orders", rule: "short-lived", targetId: "hook" }), undefined);
    assert.equal((await service.post("/v1/buses/orders/rules", apiRule("short-lived"))).status, 201);
    assert.deepEqual(await json(await service.get(`${path}/status`)), { state: "enabled" });
  });

  test("status - failing since, as the engine's health marks it, is shown", async () => {
    const address = { bus: "orders", rule: "paced", targetId: "unbroken" };
    service.storage.targetStates.markFailing(address, Date.parse("2026-03-01T12:00:00.000Z"));
    const status = await json(await service.get("/v1/buses/orders/rules/paced/targets/unbroken/status"));
    assert.deepEqual(status, { state: "enabled", failingSince: "2026-03-01T12:00:00.000Z" });
    const enabled = await json(await service.post("/v1/buses/orders/rules/paced/targets/unbroken:enable", {}));
    assert.deepEqual(enabled, { state: "enabled" }, "enabling forgets the failing run");
  });

  test("status - GET on a custom method and POST on the status are 405", async () => {
    const wrong = await service.get("/v1/buses/orders/rules/paced/targets/slow:enable");
    assert.equal(wrong.status, 405);
    assert.equal(((await json(wrong)).error as Obj).code, "MethodNotAllowed");
    const post = await service.post("/v1/buses/orders/rules/paced/targets/slow/status", {});
    assert.equal(post.status, 405);
  });
});
