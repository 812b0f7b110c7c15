/**
 * API keys on a real Relaybus (issue 8, first acceptance bullet): a publish with a key scoped
 * to another bus gets 403, without a key 401; every route but health and ingest refuses a
 * publish-only key; a revoked key stops working at the next request; an expired key too.
 * Also: scopes per route group, the bootstrap, last-used, and that secrets are never shown
 * again nor stored in the clear.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startRelaybus, type RelaybusService } from "../../src/api/service.js";
import { ROUTE_NEEDS, routeNeed } from "../../src/api/auth-scopes.js";
import { DEFAULT_CONFIG, type RelaybusConfig } from "../../src/config/defaults.js";
import { silentLogger } from "../../src/types.js";
import { contractRoutes, routeKey } from "../helpers/openapi.js";

type Obj = Record<string, unknown>;

const RULES = `bus: orders
rules: []
`;
const MORE_RULES = `bus: shop-eu
rules: []
`;

/** A clock the test moves: the wall clock plus an offset. */
function movableClock() {
  let offsetMs = 0;
  return { nowMs: () => Date.now() + offsetMs, advance: (ms: number) => (offsetMs += ms) };
}

interface AuthService {
  service: RelaybusService;
  dir: string;
  clock: ReturnType<typeof movableClock>;
  call(method: string, path: string, options?: { key?: string; json?: unknown; headers?: Record<string, string>; raw?: string }): Promise<{ status: number; body: Obj }>;
  close(): Promise<void>;
}

async function startAuthService(auth: Partial<RelaybusConfig["auth"]> = {}): Promise<AuthService> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-auth-"));
  const rulesDir = join(dir, "rules");
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, "orders.yaml"), RULES);
  writeFileSync(join(rulesDir, "shop.yaml"), MORE_RULES);
  const config: RelaybusConfig = {
    ...structuredClone(DEFAULT_CONFIG),
    server: { host: "127.0.0.1", port: 0 },
    dataDir: join(dir, "data"),
    rulesDir,
    watchRules: false,
    auth: { ...DEFAULT_CONFIG.auth, ...auth },
  };
  const clock = movableClock();
  const service = await startRelaybus(config, { logger: silentLogger, clock });
  return {
    service,
    dir,
    clock,
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
      let body = options.raw;
      if (options.json !== undefined) {
        body = JSON.stringify(options.json);
        headers["content-type"] ??= "application/json";
      }
      const response = await fetch(`${service.url}${path}`, { method, headers, body });
      const text = await response.text();
      return { status: response.status, body: (text === "" ? {} : JSON.parse(text)) as Obj };
    },
    async close() {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function assertError(answer: { status: number; body: Obj }, status: number, code: string, message?: RegExp): void {
  const error = answer.body.error as Obj | undefined;
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(error?.code, code, JSON.stringify(answer.body));
  if (message !== undefined) assert.match(String(error?.message), message);
}

const putEvents = (...buses: string[]) => ({
  Entries: buses.map((bus) => ({ EventBusName: bus, Source: "auth.test", DetailType: "t", Detail: "{}" })),
});

const cloudEvent = (id: string) => JSON.stringify({ specversion: "1.0", id, source: "auth.test", type: "t" });

/** A concrete path for a template: every `{param}` becomes `x`. */
const concrete = (template: string) => template.replace(/\{\w+\}/g, "x");

describe("auth keys", () => {
  let s: AuthService;
  let admin: Obj;

  before(async () => {
    s = await startAuthService();
    // The bootstrap: no key yet, from loopback, without a key.
    const created = await s.call("POST", "/v1/keys", { json: { name: "root", scopes: ["admin"] } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    admin = created.body;
  });
  after(async () => {
    await s.close();
  });

  const create = async (scopes: string[], extra: Obj = {}) => {
    const answer = await s.call("POST", "/v1/keys", { key: admin.token as string, json: { name: scopes.join(" "), scopes, ...extra } });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return answer.body;
  };

  test("auth - a new key is answered once with its token and AWS pair, then shown without secrets", async () => {
    assert.match(String(admin.token), /^rb_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(admin.accessKeyId, `AKRB${String(admin.id).toUpperCase()}`);
    assert.match(String(admin.secretAccessKey), /^[A-Za-z0-9_-]{40}$/);
    const shown = await s.call("GET", `/v1/keys/${String(admin.id)}`, { key: admin.token as string });
    assert.equal(shown.status, 200);
    assert.equal(shown.body.token, undefined);
    assert.equal(shown.body.secretAccessKey, undefined);
    assert.deepEqual(shown.body.scopes, ["admin"]);
    assert.equal(shown.body.state, "active");
    const listed = await s.call("GET", "/v1/keys", { key: admin.token as string });
    assert.ok(JSON.stringify(listed.body).includes(String(admin.id)));
    assert.ok(!JSON.stringify(listed.body).includes(String(admin.token).slice(20)), "no secret in the list");

    // Stored: a hash of the token's secret, the AWS secret sealed; the box key file is owner-only.
    const stateFile = readFileSync(join(s.dir, "data", "relaybus-state.db"));
    const secretPart = String(admin.token).split("_").slice(2).join("_");
    assert.equal(stateFile.includes(Buffer.from(secretPart)), false, "the token's secret is not in the state file");
    assert.equal(stateFile.includes(Buffer.from(String(admin.secretAccessKey))), false, "the AWS secret is not in the clear");
    assert.equal(statSync(join(s.dir, "data", "keys.secret")).mode & 0o777, 0o600);
  });

  test("auth - without a key 401, with a malformed or unknown key 401, never echoing the secret", async () => {
    assertError(await s.call("GET", "/v1/buses"), 401, "Unauthorized", /no API key/);
    assertError(await s.call("POST", "/v1/events", { json: putEvents("orders") }), 401, "Unauthorized", /no API key/);
    assertError(
      await s.call("POST", "/v1/buses/orders/cloudevents", { raw: cloudEvent("c-0"), headers: { "content-type": "application/cloudevents+json" } }),
      401,
      "Unauthorized",
    );
    const forged = `rb_${String(admin.id)}_${"A".repeat(43)}`;
    const wrong = await s.call("GET", "/v1/buses", { key: forged });
    assertError(wrong, 401, "Unauthorized", /unknown key or wrong secret/);
    assert.ok(!JSON.stringify(wrong.body).includes("A".repeat(43)));
    assertError(await s.call("GET", "/v1/buses", { key: "not-a-key" }), 401, "Unauthorized", /not a Relaybus API key/);
    assertError(await s.call("GET", "/v1/buses", { headers: { authorization: "Basic dTpw" } }), 401, "Unauthorized", /Bearer/);
    // x-api-key works as well as Bearer.
    const viaHeader = await s.call("GET", "/v1/buses", { headers: { "x-api-key": admin.token as string } });
    assert.equal(viaHeader.status, 200);
    // Health stays open.
    assert.equal((await s.call("GET", "/healthz")).status, 200);
  });

  test("auth - a publish with a key scoped to another bus gets 403; to its own bus 200", async () => {
    const key = (await create(["publish:orders"])).token as string;
    const ce = { "content-type": "application/cloudevents+json" };
    assertError(
      await s.call("POST", "/v1/buses/default/cloudevents", { key, raw: cloudEvent("c-1"), headers: ce }),
      403,
      "Forbidden",
      /may not publish to bus "default"; it needs publish:default, publish:\* or admin/,
    );
    assertError(await s.call("POST", "/v1/events", { key, json: putEvents("default") }), 403, "Forbidden", /publish to bus "default"/);
    assertError(await s.call("POST", "/v1/events", { key, json: putEvents("no-such-bus") }), 403, "Forbidden", /"no-such-bus"/);
    const own = await s.call("POST", "/v1/buses/orders/cloudevents", { key, raw: cloudEvent("c-2"), headers: ce });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const ownPut = await s.call("POST", "/v1/events", { key, json: putEvents("orders") });
    assert.equal(ownPut.status, 200);
    assert.equal(ownPut.body.FailedEntryCount, 0);
  });

  test("auth - PutEvents with mixed buses stores the allowed entries and refuses the others per entry", async () => {
    const key = (await create(["publish:shop-*"])).token as string;
    const answer = await s.call("POST", "/v1/events", { key, json: putEvents("shop-eu", "orders", "shop-eu") });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.FailedEntryCount, 1);
    const entries = answer.body.Entries as Obj[];
    assert.ok(typeof entries[0]!.EventId === "string");
    assert.equal(entries[1]!.ErrorCode, "Forbidden");
    assert.ok(typeof entries[2]!.EventId === "string");
    const stored = await s.call("GET", "/v1/buses/shop-eu/events", { key: admin.token as string });
    const ids = ((stored.body.events as Obj[]) ?? []).map((e) => (e.event as Obj | undefined)?.id ?? e.id);
    assert.ok(ids.includes(entries[0]!.EventId), JSON.stringify(stored.body).slice(0, 300));
    const orders = await s.call("GET", "/v1/buses/orders/events", { key: admin.token as string });
    assert.ok(!JSON.stringify(orders.body).includes(String(entries[0]!.EventId)));
  });

  test("auth - every route of openapi.yaml is in the scope table, and resolves to its own line", () => {
    const table = new Map(ROUTE_NEEDS.map(([method, path, need]) => [routeKey(method, path), need]));
    const routes = contractRoutes();
    assert.ok(routes.length >= 50, `routes: ${routes.length}`);
    for (const { method, path } of routes) {
      const need = table.get(routeKey(method, path));
      assert.ok(need !== undefined, `${routeKey(method, path)} is not in ROUTE_NEEDS`);
      assert.equal(routeNeed(method, concrete(path)), need, `${routeKey(method, path)} resolves to another line`);
    }
    assert.equal(routeNeed("GET", "/v1/some-future-route"), "admin", "a route not in the table needs admin");
  });

  test("auth - every route but health and ingest refuses a publish-only key with 403", async () => {
    const key = (await create(["publish:*"])).token as string;
    const refused: string[] = [];
    for (const { method, path } of contractRoutes()) {
      const need = routeNeed(method, concrete(path));
      if (need === "open" || need === "publish") continue;
      const answer = await s.call(method, concrete(path), { key, ...(method === "GET" || method === "DELETE" ? {} : { json: {} }) });
      assertError(answer, 403, "Forbidden", /lacks the scope; this route needs/);
      refused.push(routeKey(method, path));
    }
    assert.ok(refused.length >= 48, `refused ${refused.length}`);
  });

  test("auth - read reads, manage changes, only admin manages keys and closes billing", async () => {
    const read = (await create(["read"])).token as string;
    const manage = (await create(["manage"])).token as string;
    for (const { method, path } of contractRoutes()) {
      const need = routeNeed(method, concrete(path));
      if (need === "open" || need === "publish") continue;
      const body = method === "GET" || method === "DELETE" ? {} : { json: {} };
      const asRead = await s.call(method, concrete(path), { key: read, ...body });
      const asManage = await s.call(method, concrete(path), { key: manage, ...body });
      const where = routeKey(method, path);
      if (need === "read") {
        assert.ok(![401, 403].includes(asRead.status), `${where} read: ${asRead.status}`);
        assert.ok(![401, 403].includes(asManage.status), `${where} manage: ${asManage.status}`);
      } else if (need === "manage") {
        assertError(asRead, 403, "Forbidden");
        assert.ok(![401, 403].includes(asManage.status), `${where} manage: ${asManage.status}`);
      } else {
        assertError(asRead, 403, "Forbidden");
        assertError(asManage, 403, "Forbidden");
      }
    }
    // Neither may publish.
    assertError(await s.call("POST", "/v1/events", { key: read, json: putEvents("orders") }), 403, "Forbidden");
    assertError(await s.call("POST", "/v1/events", { key: manage, json: putEvents("orders") }), 403, "Forbidden");
  });

  test("auth - a revoked key stops working at the very next request", async () => {
    const key = await create(["publish:orders", "read"]);
    const token = key.token as string;
    assert.equal((await s.call("POST", "/v1/events", { key: token, json: putEvents("orders") })).status, 200);
    const revoked = await s.call("POST", `/v1/keys/${String(key.id)}:revoke`, { key: admin.token as string });
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.state, "revoked");
    assertError(await s.call("POST", "/v1/events", { key: token, json: putEvents("orders") }), 401, "Unauthorized", /was revoked at/);
    assertError(await s.call("GET", "/v1/buses", { key: token }), 401, "Unauthorized", /was revoked/);
    assertError(await s.call("POST", "/v1/keys/0000000000000000:revoke", { key: admin.token as string }), 404, "KeyNotFound");
    assertError(await s.call("GET", "/v1/keys/nope", { key: admin.token as string }), 404, "KeyNotFound");
  });

  test("auth - a key stops working once it expires", async () => {
    const expiresAt = new Date(s.clock.nowMs() + 3_600_000).toISOString();
    const key = await create(["read"], { expiresAt });
    assert.equal(key.expiresAt, expiresAt);
    assert.equal((await s.call("GET", "/v1/buses", { key: key.token as string })).status, 200);
    s.clock.advance(3_600_000);
    try {
      assertError(await s.call("GET", "/v1/buses", { key: key.token as string }), 401, "Unauthorized", /expired at/);
      const shown = await s.call("GET", `/v1/keys/${String(key.id)}`, { key: admin.token as string });
      assert.equal(shown.body.state, "expired");
    } finally {
      s.clock.advance(-3_600_000);
    }
    assertError(
      await s.call("POST", "/v1/keys", { key: admin.token as string, json: { name: "past", scopes: ["read"], expiresAt: "2020-01-01T00:00:00Z" } }),
      400,
      "ValidationError",
      /expiresAt: .* is not in the future/,
    );
    assertError(
      await s.call("POST", "/v1/keys", { key: admin.token as string, json: { name: "bad", scopes: ["read"], expiresAt: "tomorrow" } }),
      400,
      "ValidationError",
      /expiresAt: expected an RFC 3339 time/,
    );
  });

  test("auth - bad scopes are refused naming the scope", async () => {
    assertError(
      await s.call("POST", "/v1/keys", { key: admin.token as string, json: { name: "x", scopes: ["read", "publish:bad bus"] } }),
      400,
      "ValidationError",
      /scopes\[1\]: "publish:bad bus" is not a scope/,
    );
    assertError(await s.call("POST", "/v1/keys", { key: admin.token as string, json: { name: "x", scopes: ["write"] } }), 400, "ValidationError");
  });

  test("auth - last use is recorded, at most once a minute", async () => {
    const key = await create(["read"]);
    const before = await s.call("GET", `/v1/keys/${String(key.id)}`, { key: admin.token as string });
    assert.equal(before.body.lastUsedAt, undefined);
    await s.call("GET", "/v1/buses", { key: key.token as string });
    const first = (await s.call("GET", `/v1/keys/${String(key.id)}`, { key: admin.token as string })).body.lastUsedAt;
    assert.ok(typeof first === "string");
    await s.call("GET", "/v1/buses", { key: key.token as string });
    const same = (await s.call("GET", `/v1/keys/${String(key.id)}`, { key: admin.token as string })).body.lastUsedAt;
    assert.equal(same, first, "a second use within the minute writes nothing");
    s.clock.advance(61_000);
    try {
      await s.call("GET", "/v1/buses", { key: key.token as string });
      const later = (await s.call("GET", `/v1/keys/${String(key.id)}`, { key: admin.token as string })).body.lastUsedAt;
      assert.ok(String(later) > String(first), `${String(later)} after ${String(first)}`);
    } finally {
      s.clock.advance(-61_000);
    }
  });
});

describe("auth bootstrap and defaults", () => {
  test("auth - with no key and auth off, requests pass as before; the first key must be admin", async () => {
    const s = await startAuthService();
    try {
      assert.equal((await s.call("GET", "/v1/buses")).status, 200);
      assert.equal((await s.call("POST", "/v1/events", { json: putEvents("orders") })).status, 200);
      assertError(
        await s.call("POST", "/v1/keys", { json: { name: "p", scopes: ["publish:orders"] } }),
        400,
        "ValidationError",
        /the first key must have the admin scope/,
      );
      const root = await s.call("POST", "/v1/keys", { json: { name: "root", scopes: ["admin"] } });
      assert.equal(root.status, 201);
      // Auth is on from the next request, key management included.
      assertError(await s.call("GET", "/v1/buses"), 401, "Unauthorized");
      assertError(await s.call("POST", "/v1/keys", { json: { name: "again", scopes: ["admin"] } }), 401, "Unauthorized");
      assert.equal((await s.call("GET", "/v1/buses", { key: root.body.token as string })).status, 200);
    } finally {
      await s.close();
    }
  });

  test("auth - with auth.required and no key, everything is 401 but the loopback bootstrap", async () => {
    const s = await startAuthService({ required: true });
    try {
      assertError(await s.call("GET", "/v1/buses"), 401, "Unauthorized", /no API key/);
      assertError(await s.call("POST", "/v1/events", { json: putEvents("orders") }), 401, "Unauthorized");
      assert.equal((await s.call("GET", "/healthz")).status, 200);
      const root = await s.call("POST", "/v1/keys", { json: { name: "root", scopes: ["admin"] } });
      assert.equal(root.status, 201, JSON.stringify(root.body));
      assertError(await s.call("GET", "/v1/keys"), 401, "Unauthorized");
    } finally {
      await s.close();
    }
  });

  test("auth - a server restarted on the same data keeps its keys and auth stays on", async () => {
    const s = await startAuthService();
    const dataDir = join(s.dir, "data");
    const root = await s.call("POST", "/v1/keys", { json: { name: "root", scopes: ["admin"] } });
    await s.service.close();
    const config: RelaybusConfig = {
      ...structuredClone(DEFAULT_CONFIG),
      server: { host: "127.0.0.1", port: 0 },
      dataDir,
      rulesDir: join(s.dir, "rules"),
      watchRules: false,
    };
    const again = await startRelaybus(config, { logger: silentLogger });
    try {
      assert.equal((await fetch(`${again.url}/v1/buses`)).status, 401);
      const ok = await fetch(`${again.url}/v1/buses`, { headers: { authorization: `Bearer ${String(root.body.token)}` } });
      assert.equal(ok.status, 200);
    } finally {
      await again.close();
      rmSync(s.dir, { recursive: true, force: true });
    }
  });

  test("auth - a non-loopback host without keys is refused at start, unless allowed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "relaybus-auth-"));
    try {
      const config: RelaybusConfig = {
        ...structuredClone(DEFAULT_CONFIG),
        server: { host: "0.0.0.0", port: 0 },
        dataDir: join(dir, "data"),
        rulesDir: join(dir, "rules"),
        watchRules: false,
      };
      await assert.rejects(startRelaybus(config, { logger: silentLogger }), (error: Error & { code?: string }) => {
        assert.equal(error.code, "InvalidConfig");
        assert.match(error.message, /server.host 0.0.0.0 is not a loopback address and no API key exists/);
        assert.match(error.message, /auth.allowUnauthenticated/);
        return true;
      });
      const allowed = await startRelaybus({ ...config, auth: { required: false, allowUnauthenticated: true } }, { logger: silentLogger });
      await allowed.close();
      const required = await startRelaybus({ ...config, auth: { required: true, allowUnauthenticated: false } }, { logger: silentLogger });
      await required.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
