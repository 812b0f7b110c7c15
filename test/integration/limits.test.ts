/**
 * Limits everywhere (issue 8, item 3): each limit is configurable, refuses one over it with its
 * own code and status, and lets one at it pass. A service runs with small limits so that
 * "at" and "over by one" are cheap to build; the publish rate limits (per bus, per API key)
 * run on services of their own, since their buckets carry over between requests.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createPublishRateLimits } from "../../src/api/publish-rate-limit.js";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { loadConfig } from "../../src/config/load-config.js";
import { ERROR_STATUS, isRelaybusError, type ErrorCode } from "../../src/errors.js";
import { parseCloudEvent } from "../../src/events/cloud-event.js";
import { measureEvent } from "../../src/events/sizing.js";
import { systemClock } from "../../src/types.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

const LIMITS = {
  maxRequestBytes: 4096,
  maxEntriesPerRequest: 3,
  maxEventBytes: 2048,
  maxJsonDepth: 5,
  maxJsonKeysPerObject: 10,
  maxPatternBytes: 200,
  maxTransformBytes: 64,
  maxRulesPerBus: 3,
  maxTargetsPerRule: 2,
  maxPatternValuesPerField: 3,
  maxPatternDepth: 2,
  maxPatternWildcardStars: 2,
  maxPatternRegexLength: 8,
};

const ORDERS = `bus: orders
rules: []
`;

async function json(response: Response): Promise<Obj> {
  return (await response.json()) as Obj;
}

/** Asserts an error answer: the status of the code's row in the table, and the code. */
async function assertRefused(response: Response, code: ErrorCode): Promise<Obj> {
  const body = await json(response);
  const error = body.error as Obj | undefined;
  assert.equal(error?.code, code, `expected ${code}, got ${JSON.stringify(body)}`);
  assert.equal(response.status, ERROR_STATUS[code]);
  return error!;
}

function entry(bus = "orders", detail: Obj = {}): Obj {
  return { EventBusName: bus, Source: "shop", DetailType: "order.created", Detail: JSON.stringify(detail) };
}

function rule(name: string, extra: Obj = {}): Obj {
  return { name, pattern: { source: ["shop"] }, ...extra };
}

function target(id: string, extra: Obj = {}): Obj {
  return { id, webhook: { url: "http://127.0.0.1:9/hook" }, ...extra };
}

describe("limits - each refuses one over with its own code, passes one at it", () => {
  let s: TestService;
  before(async () => {
    s = await startTestService({ rules: { "orders.yaml": ORDERS }, config: { limits: LIMITS, transform: { timeoutMs: 50 } } });
  });
  after(async () => {
    await s.close();
  });

  const createBus = async (name: string) => assert.equal((await s.post("/v1/buses", { name })).status, 201);

  test("limits - request body: maxRequestBytes at the limit passes, one byte over is 413 PayloadTooLarge", async () => {
    const body = JSON.stringify({ Entries: [entry()] });
    const atLimit = body + " ".repeat(LIMITS.maxRequestBytes - body.length);
    const ok = await s.post("/v1/events", atLimit);
    assert.equal(ok.status, 200);
    assert.equal((await json(ok)).FailedEntryCount, 0);
    const error = await assertRefused(await s.post("/v1/events", atLimit + " "), "PayloadTooLarge");
    assert.match(String(error.message), /limits\.maxRequestBytes/);
  });

  test("limits - entries per request: maxEntriesPerRequest at the limit passes, one over is 400 TooManyEntries", async () => {
    const ok = await s.post("/v1/events", { Entries: [entry(), entry(), entry()] });
    assert.equal(ok.status, 200);
    assert.equal((await json(ok)).FailedEntryCount, 0);
    await assertRefused(await s.post("/v1/events", { Entries: [entry(), entry(), entry(), entry()] }), "TooManyEntries");
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ specversion: "1.0", id: `b${i}`, source: "shop", type: "t" }));
    const headers = { "content-type": "application/cloudevents-batch+json" };
    assert.equal((await s.post("/v1/buses/orders/cloudevents", batch(3), headers)).status, 200);
    await assertRefused(await s.post("/v1/buses/orders/cloudevents", batch(4), headers), "TooManyEntries");
  });

  test("limits - event size: maxEventBytes at the limit passes, one byte over is 413 EventTooLarge", async () => {
    const event = (pad: number) => ({ specversion: "1.0", id: "sized", source: "shop", type: "t", data: { pad: "x".repeat(pad) } });
    const sizeOf = (pad: number) => measureEvent("orders", parseCloudEvent(event(pad), "event")).sizeBytes;
    const pad = LIMITS.maxEventBytes - sizeOf(0);
    assert.equal(sizeOf(pad), LIMITS.maxEventBytes);
    const headers = { "content-type": "application/cloudevents+json" };
    assert.equal((await s.post("/v1/buses/orders/cloudevents", event(pad), headers)).status, 200);
    const error = await assertRefused(await s.post("/v1/buses/orders/cloudevents", event(pad + 1), headers), "EventTooLarge");
    // In PutEvents the entry is refused in its place.
    const entries = await json(await s.post("/v1/events", { Entries: [entry("orders", { pad: "x".repeat(pad) })] }));
    assert.equal((entries.Entries as Obj[])[0]!.ErrorCode, "EventTooLarge");
    assert.equal((error.details as Obj).sizeBytes, LIMITS.maxEventBytes + 1);
  });

  test("limits - JSON depth: maxJsonDepth at the limit passes, one deeper is 400 JsonTooDeep", async () => {
    // The event is level 1 and data level 2, so data nesting 3 more objects reaches 5.
    const nested = (levels: number): Obj => (levels === 0 ? {} : { a: nested(levels - 1) });
    const event = (levels: number) => ({ specversion: "1.0", id: `deep-${levels}`, source: "shop", type: "t", data: nested(levels) });
    const headers = { "content-type": "application/cloudevents+json" };
    assert.equal((await s.post("/v1/buses/orders/cloudevents", event(3), headers)).status, 200);
    await assertRefused(await s.post("/v1/buses/orders/cloudevents", event(4), headers), "JsonTooDeep");
    // The control plane parses with the same limit.
    await assertRefused(await s.post("/v1/buses", { name: "deep", description: nested(5) }), "JsonTooDeep");
  });

  test("limits - JSON keys: maxJsonKeysPerObject at the limit passes, one more key is 400 JsonTooManyKeys", async () => {
    const keys = (n: number): Obj => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    const event = (n: number) => ({ specversion: "1.0", id: `keys-${n}`, source: "shop", type: "t", data: keys(n) });
    const headers = { "content-type": "application/cloudevents+json" };
    assert.equal((await s.post("/v1/buses/orders/cloudevents", event(10), headers)).status, 200);
    const error = await assertRefused(await s.post("/v1/buses/orders/cloudevents", event(11), headers), "JsonTooManyKeys");
    assert.match(String(error.message), /limits\.maxJsonKeysPerObject/);
    // Keys of different objects do not add up: 10 here and 10 below.
    const wide = { ...keys(9), inner: keys(10) };
    assert.equal((await s.post("/v1/buses/orders/cloudevents", { ...event(0), data: wide }, headers)).status, 200);
    // A key inside a string is not a key.
    const text = { specversion: "1.0", id: "keys-text", source: "shop", type: "t", data: { s: '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11}' } };
    assert.equal((await s.post("/v1/buses/orders/cloudevents", text, headers)).status, 200);
    // PutEvents bodies and the control plane too.
    await assertRefused(await s.post("/v1/events", { Entries: [{ ...entry(), ...keys(7) }] }), "JsonTooManyKeys");
    await assertRefused(await s.post("/v1/buses", keys(11)), "JsonTooManyKeys");
    // Ten keys parse (and are then refused for their shape, not their count).
    await assertRefused(await s.post("/v1/buses", keys(10)), "ValidationError");
  });

  test("limits - pattern size: maxPatternBytes at the limit passes, one byte over is 400 EventPatternTooLarge", async () => {
    await createBus("patterns");
    // {"source":["..."]} is 15 bytes around the value.
    const pattern = (bytes: number) => ({ source: ["p".repeat(bytes - 15)] });
    assert.equal(JSON.stringify(pattern(200)).length, 200);
    assert.equal((await s.post("/v1/buses/patterns/rules", { name: "at", pattern: pattern(200) })).status, 201);
    const error = await assertRefused(await s.post("/v1/buses/patterns/rules", { name: "over", pattern: pattern(201) }), "EventPatternTooLarge");
    assert.match(String(error.message), /limits\.maxPatternBytes/);
    // Complexity: a pattern past the parser's limits is refused (InvalidEventPattern), whatever its size allows.
    const wild = { source: [{ wildcard: "*a*b*c*d*e*f*" }] };
    await assertRefused(await s.post("/v1/buses/patterns/rules", { name: "wild", pattern: wild }), "InvalidEventPattern");
  });

  test("limits - pattern lists, nesting, stars per wildcard and regex length: at each limit passes, one over is refused with its code naming the setting", async () => {
    const event = { source: "shop", "detail-type": "t", detail: { a: "x" } };
    const cases: { setting: string; at: Obj; over: Obj; code: ErrorCode }[] = [
      {
        setting: "maxPatternValuesPerField",
        at: { source: ["a", "b", "shop"] },
        over: { source: ["a", "b", "c", "shop"] },
        code: "EventPatternTooComplex",
      },
      // The root is level 1, so the object of detail.a is level 3 (and the body stays within maxJsonDepth).
      { setting: "maxPatternDepth", at: { detail: { a: ["x"] } }, over: { detail: { a: { b: ["x"] } } }, code: "EventPatternTooComplex" },
      // EventBridge's own refusal of too many stars is an invalid pattern, and stays one.
      { setting: "maxPatternWildcardStars", at: { source: [{ wildcard: "s*o*p" }] }, over: { source: [{ wildcard: "s*h*o*p" }] }, code: "InvalidEventPattern" },
      { setting: "maxPatternRegexLength", at: { source: [{ regex: "s[a-z]op" }] }, over: { source: [{ regex: "s[a-z]op+" }] }, code: "EventPatternTooLarge" },
    ];
    for (const [i, { setting, at, over, code }] of cases.entries()) {
      const tested = await s.post("/v1/test-event-pattern", { pattern: at, event });
      const answer = await json(tested);
      assert.equal(tested.status, 200, `${setting} at the limit: ${JSON.stringify(answer)}`);
      assert.equal(answer.match, true, setting);
      // A bus per case, so that maxRulesPerBus (3) stays out of the way.
      await createBus(`shapes-${i}`);
      assert.equal((await s.post(`/v1/buses/shapes-${i}/rules`, { name: "at", pattern: at })).status, 201, setting);

      const refused = await assertRefused(await s.post("/v1/test-event-pattern", { pattern: over, event }), code);
      assert.match(String(refused.message), new RegExp(`limits\\.${setting}`));
      const created = await assertRefused(await s.post(`/v1/buses/shapes-${i}/rules`, { name: "over", pattern: over }), code);
      assert.match(String(created.message), new RegExp(`^/pattern/\\S+: .*limits\\.${setting}`));
    }
  });

  test("limits - JSONata size: maxTransformBytes at the limit passes, one byte over is 400 TransformTooLarge", async () => {
    await createBus("transforms");
    const literal = (bytes: number) => `"${"t".repeat(bytes - 2)}"`;
    const create = (name: string, bytes: number) =>
      s.post("/v1/buses/transforms/rules", rule(name, { targets: [target("t", { transform: literal(bytes) })] }));
    assert.equal((await create("at", 64)).status, 201);
    const error = await assertRefused(await create("over", 65), "TransformTooLarge");
    assert.match(String(error.message), /limits\.maxTransformBytes/);
  });

  test("limits - JSONata time: an evaluation past transform.timeoutMs fails as TransformTimeout, naming the budget", async () => {
    await createBus("slow");
    const put = await s.post("/v1/events", { Entries: [entry("slow", { n: 1 })] });
    assert.equal((await json(put)).FailedEntryCount, 0);
    // Exponential: 2^40 calls, far past any budget; short enough for maxTransformBytes (64).
    const slow = "($f:=function($n){$n>0?$f($n-1)+$f($n-1):0};$f(40))";
    const dryRun = async (transform: string) => {
      const answer = await s.post("/v1/buses/slow/rules/r:dry-run", {
        rule: rule("r", { targets: [target("t", { transform })] }),
        limit: 10,
      });
      assert.equal(answer.status, 200);
      const matches = (await json(answer)).matches as { targets: Obj[] }[];
      assert.equal(matches.length, 1);
      return matches[0]!.targets[0]!;
    };
    const shaped = await dryRun("{'n': data.n}");
    assert.equal(shaped.outcome, "payload");
    assert.equal(shaped.code, undefined);
    const timedOut = await dryRun(slow);
    assert.equal(timedOut.outcome, "error");
    assert.equal(timedOut.code, "TransformTimeout");
    // The reason is the dead letter's: the budget's message, then the code.
    assert.equal(timedOut.error, "transform failed: transform evaluation exceeded 50 ms (TransformTimeout)");
    // A failing expression is InvalidTransform, not a timeout.
    const failing = await dryRun("$error('no')");
    assert.equal(failing.outcome, "error");
    assert.equal(failing.code, "InvalidTransform");
  });

  test("limits - targets per rule: maxTargetsPerRule at the limit passes, one over is 400 TooManyTargets", async () => {
    await createBus("targets");
    const targets = (n: number) => Array.from({ length: n }, (_, i) => target(`t${i}`));
    assert.equal((await s.post("/v1/buses/targets/rules", rule("two", { targets: targets(2) }))).status, 201);
    const error = await assertRefused(await s.post("/v1/buses/targets/rules", rule("three", { targets: targets(3) })), "TooManyTargets");
    assert.match(String(error.message), /\/targets: at most 2 targets \(limits\.maxTargetsPerRule\), got 3/);
  });

  test("limits - rules per bus: maxRulesPerBus rules pass, one more is 409 TooManyRules; a rule file over it is a problem of the file", async () => {
    await createBus("capped");
    for (const name of ["a", "b", "c"]) {
      assert.equal((await s.post("/v1/buses/capped/rules", rule(name))).status, 201);
    }
    const error = await assertRefused(await s.post("/v1/buses/capped/rules", rule("d")), "TooManyRules");
    assert.deepEqual(error.details, { bus: "capped", count: 3, maxRulesPerBus: 3 });
    // Replacing one is no new rule.
    const replaced = await fetch(`${s.url}/v1/buses/capped/rules/a`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(rule("a", { description: "again" })),
    });
    assert.equal(replaced.status, 200);
    // After a delete there is room again.
    assert.equal((await fetch(`${s.url}/v1/buses/capped/rules/c`, { method: "DELETE" })).status, 204);
    assert.equal((await s.post("/v1/buses/capped/rules", rule("d"))).status, 201);

    // A rule file: 3 rules pass, 4 are refused at the fourth, and the running rules stay.
    const file = (n: number) =>
      `bus: filed\nrules:\n${Array.from({ length: n }, (_, i) => `  - name: r${i}\n    pattern: {source: [shop]}\n`).join("")}`;
    writeFileSync(join(s.rulesDir, "filed.yaml"), file(3));
    assert.equal((await s.post("/v1/rules:reload", {})).status, 200);
    writeFileSync(join(s.rulesDir, "filed.yaml"), file(4));
    const reload = await assertRefused(await s.post("/v1/rules:reload", {}), "RulesReloadFailed");
    const problems = (reload.details as { problems: Obj[] }).problems;
    assert.equal(problems.length, 1);
    assert.match(String(problems[0]!.file), /filed\.yaml$/);
    assert.equal(problems[0]!.line, 9);
    assert.match(String(problems[0]!.message), /rule "r3" is past the limit of 3 rules on bus "filed" \(limits\.maxRulesPerBus/);
    assert.equal(((await json(await s.get("/v1/buses/filed/rules"))).rules as unknown[]).length, 3);
    // API rules and file rules count together.
    writeFileSync(join(s.rulesDir, "filed.yaml"), file(2));
    assert.equal((await s.post("/v1/rules:reload", {})).status, 200);
    assert.equal((await s.post("/v1/buses/filed/rules", rule("api"))).status, 201);
    await assertRefused(await s.post("/v1/buses/filed/rules", rule("api2")), "TooManyRules");
    writeFileSync(join(s.rulesDir, "filed.yaml"), file(3));
    await assertRefused(await s.post("/v1/rules:reload", {}), "RulesReloadFailed");
  });
});

describe("limits - publish rate per bus", () => {
  let s: TestService;
  before(async () => {
    s = await startTestService({
      rules: { "orders.yaml": ORDERS, "other.yaml": "bus: other\nrules: []\n" },
      // Refused requests write nothing; the stored ones commit faster without fsync, so the
      // requests below fit in the second a token takes to come back.
      config: { limits: { publishRatePerBus: 1 }, log: { durability: "fsync-wal-only" } },
    });
  });
  after(async () => {
    await s.close();
  });

  test("limits - a burst over the bus's rate is refused per event, whole requests get 429 with Retry-After, and pass again after waiting", async () => {
    const entries = (n: number, bus = "orders") => ({ Entries: Array.from({ length: n }, () => entry(bus)) });
    // A burst of one second's worth (1), counted in events: 3 entries store 1.
    const partial = await s.post("/v1/events", entries(3));
    assert.equal(partial.status, 200);
    const answer = (await json(partial)) as { FailedEntryCount: number; Entries: Obj[] };
    assert.equal(answer.FailedEntryCount, 2);
    assert.deepEqual(answer.Entries.map((e) => e.ErrorCode ?? "ok"), ["ok", "RateLimited", "RateLimited"]);
    assert.match(String(answer.Entries[1]!.ErrorMessage), /1 events\/s on bus "orders" \(limits\.publishRatePerBus\)/);

    // Nothing left: a whole request is refused, 429 with Retry-After in whole seconds.
    const refused = await s.post("/v1/events", entries(1));
    const error = await assertRefused(refused, "RateLimited");
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.equal((error.details as Obj).retryAfterSeconds, 1);
    // CloudEvents count on the same bucket.
    const one = await s.post("/v1/buses/orders/cloudevents", { specversion: "1.0", id: "r1", source: "s", type: "t" }, {
      "content-type": "application/cloudevents+json",
    });
    await assertRefused(one, "RateLimited");
    assert.equal(one.headers.get("retry-after"), "1");
    // The AWS protocol route says ThrottlingException, as AWS does.
    const aws = await s.post("/", entries(1), { "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutEvents" });
    assert.equal(aws.status, 429);
    assert.equal(aws.headers.get("retry-after"), "1");
    assert.equal((await json(aws)).__type, "ThrottlingException");

    // Another bus has its own bucket.
    assert.equal((await json(await s.post("/v1/events", entries(1, "other")))).FailedEntryCount, 0);

    // A second later the bucket is full again.
    await sleep(1_050);
    const again = await s.post("/v1/events", entries(1));
    assert.equal(again.status, 200);
    assert.equal((await json(again)).FailedEntryCount, 0);
  });

  test("limits - with no rate configured no admission is made (no per-event work)", () => {
    const none = createPublishRateLimits({ ratePerBus: DEFAULT_CONFIG.limits.publishRatePerBus, clock: systemClock });
    assert.equal(none.admissionFor(undefined), undefined);
    const keyWithoutRate = { keyId: "0123456789abcdef", grants: {} as never };
    assert.equal(none.admissionFor(keyWithoutRate), undefined);
    assert.notEqual(none.admissionFor({ ...keyWithoutRate, ratePerSecond: 1 }), undefined);
  });
});

describe("limits - publish rate per API key", () => {
  let s: TestService;
  before(async () => {
    s = await startTestService({ rules: { "orders.yaml": ORDERS }, config: { log: { durability: "fsync-wal-only" } } });
  });
  after(async () => {
    await s.close();
  });

  test("limits - a key's ratePerSecond is set at creation, shown, and limits its publishes with 429 and Retry-After", async () => {
    const admin = await json(await s.post("/v1/keys", { name: "root", scopes: ["admin"] }));
    const auth = (token: unknown) => ({ authorization: `Bearer ${String(token)}` });
    const create = (body: Obj) => s.post("/v1/keys", body, auth(admin.token));
    await assertRefused(await create({ name: "zero", scopes: ["publish:*"], ratePerSecond: 0 }), "ValidationError");
    await assertRefused(await create({ name: "text", scopes: ["publish:*"], ratePerSecond: "5" }), "ValidationError");

    const slow = await create({ name: "slow", scopes: ["publish:orders"], ratePerSecond: 1 });
    assert.equal(slow.status, 201);
    const slowKey = await json(slow);
    assert.equal(slowKey.ratePerSecond, 1);
    const shown = await json(await fetch(`${s.url}/v1/keys/${String(slowKey.id)}`, { headers: auth(admin.token) }));
    assert.equal(shown.ratePerSecond, 1);
    const free = await json(await create({ name: "free", scopes: ["publish:orders"] }));
    assert.equal(free.ratePerSecond, undefined);

    const publish = (token: unknown, n: number) =>
      s.post("/v1/events", { Entries: Array.from({ length: n }, () => entry()) }, auth(token));
    const first = await json(await publish(slowKey.token, 2));
    assert.equal(first.FailedEntryCount, 1);
    const second = (first.Entries as Obj[])[1]!;
    assert.equal(second.ErrorCode, "RateLimited");
    assert.match(String(second.ErrorMessage), new RegExp(`1 events/s of API key ${String(slowKey.id)}`));
    const refused = await publish(slowKey.token, 1);
    await assertRefused(refused, "RateLimited");
    assert.equal(refused.headers.get("retry-after"), "1");
    // Another key on the same bus is not held back.
    assert.equal((await json(await publish(free.token, 5))).FailedEntryCount, 0);

    await sleep(1_050);
    assert.equal((await json(await publish(slowKey.token, 1))).FailedEntryCount, 0);
  });
});

test("limits - configuration: defaults, and out-of-range values of the new keys are refused naming them", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-limits-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const defaults = loadConfig({}, {}).limits;
  assert.equal(defaults.maxJsonKeysPerObject, 10_000);
  assert.equal(defaults.maxRulesPerBus, 300);
  assert.equal(defaults.maxTargetsPerRule, 5);
  assert.equal(defaults.publishRatePerBus, 0);
  // The pattern limits that were constants: EventBridge-compatible defaults.
  assert.deepEqual(
    [defaults.maxPatternValuesPerField, defaults.maxPatternDepth, defaults.maxPatternWildcardStars, defaults.maxPatternRegexLength],
    [1024, 32, 5, 256],
  );

  const load = (yaml: string) => {
    const file = join(dir, "relaybus.yaml");
    writeFileSync(file, yaml);
    return loadConfig({ config: file }, {});
  };
  const set = load("limits: {maxJsonKeysPerObject: 50, maxRulesPerBus: 10, maxTargetsPerRule: 100, publishRatePerBus: 0.5}\n").limits;
  assert.deepEqual(
    [set.maxJsonKeysPerObject, set.maxRulesPerBus, set.maxTargetsPerRule, set.publishRatePerBus],
    [50, 10, 100, 0.5],
  );
  for (const [yaml, name] of [
    ["limits: {maxJsonKeysPerObject: 0}", "maxJsonKeysPerObject"],
    ["limits: {maxRulesPerBus: 0}", "maxRulesPerBus"],
    ["limits: {maxTargetsPerRule: 101}", "maxTargetsPerRule"],
    ["limits: {maxTargetsPerRule: 2.5}", "maxTargetsPerRule"],
    ["limits: {publishRatePerBus: -1}", "publishRatePerBus"],
    ["limits: {publishRatePerBus: fast}", "publishRatePerBus"],
    ["limits: {maxPatternValuesPerField: 0}", "maxPatternValuesPerField"],
    ["limits: {maxPatternDepth: 1001}", "maxPatternDepth"],
    ["limits: {maxPatternWildcardStars: -1}", "maxPatternWildcardStars"],
    ["limits: {maxPatternRegexLength: 4097}", "maxPatternRegexLength"],
  ] as const) {
    assert.throws(
      () => load(`${yaml}\n`),
      (e) => isRelaybusError(e, "InvalidConfig") && e.message.includes(`/limits/${name}`),
      yaml,
    );
  }
});
