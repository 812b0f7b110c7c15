/**
 * The audit log through the real service: changes made through the API (without keys, then
 * with keys) appear with who made them, before and after; no secret reaches the table; reads
 * leave no entry; filters and paging; reloads of the rule files; retention.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { SqliteStorage } from "../../src/log/sqlite/open-sqlite-storage.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

/** Secrets that must never reach the audit log. */
const CONNECTION_SECRET = "conn-literal-secret-4f1d9a";
const CONNECTION_HEADER_SECRET = "tenant-header-secret-77aa";
const WEBHOOK_HEADER_SECRET = "webhook-bearer-secret-0c3e";
const FILE_SIGNING_SECRET = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;

function rule(name: string, description: string): Obj {
  return {
    name,
    description,
    pattern: { source: ["shop.orders"] },
    targets: [
      {
        id: "fulfil",
        webhook: {
          url: "http://127.0.0.1:9/fulfil",
          headers: { authorization: `Bearer ${WEBHOOK_HEADER_SECRET}` },
        },
        connection: "partner",
      },
    ],
  };
}

function fileRules(description: string): string {
  return `bus: orders
rules:
  - name: from-file
    description: ${description}
    pattern: {source: [shop.orders]}
    targets:
      - id: ok
        webhook: {url: "http://127.0.0.1:9/ok"}
        signing: {secrets: ["${FILE_SIGNING_SECRET}"]}
`;
}

/** Every byte of the audit table, as text. */
function auditTableText(service: TestService): string {
  const db = (service.storage as SqliteStorage).stateDatabase;
  return JSON.stringify(db.prepare("SELECT * FROM audit_log").all());
}

describe("audit log", () => {
  let service: TestService;

  async function send(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Obj }> {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text === "" ? {} : JSON.parse(text)) as Obj };
  }

  async function entries(query = "", headers: Record<string, string> = {}): Promise<Obj[]> {
    const answer = await send(
      "GET",
      `/v1/audit${query === "" ? "" : `?${query}`}`,
      undefined,
      headers,
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.entries as Obj[];
  }

  before(async () => {
    service = await startTestService({ rules: { "orders.yaml": fileRules("first") } });
  });
  after(async () => {
    await service.close();
  });

  test("audit - changes without a key are recorded as local, with before and after, secrets redacted, reads not at all", async () => {
    const ok = (answer: { status: number; body: Obj }, status: number) =>
      assert.equal(answer.status, status, JSON.stringify(answer.body));
    ok(await send("POST", "/v1/buses", { name: "shop" }), 201);
    ok(
      await send("PUT", "/v1/connections/partner", {
        authorization: { apiKey: { header: "x-api-key", value: CONNECTION_SECRET } },
        headers: { "x-tenant": CONNECTION_HEADER_SECRET },
      }),
      201,
    );
    ok(
      await send("POST", "/v1/buses/shop/rules", rule("ship", "v1"), {
        "x-request-id": "req-create-ship",
      }),
      201,
    );
    ok(await send("PUT", "/v1/buses/shop/rules/ship", rule("ship", "v2")), 200);
    ok(await send("POST", "/v1/buses/shop/rules/ship:disable"), 200);
    ok(await send("POST", "/v1/buses/shop/rules/ship:enable"), 200);
    const created = await send("POST", "/v1/buses/shop/rules/ship/targets/fulfil/secrets", {
      kind: "hmac-sha256",
    });
    ok(created, 201);
    const signingSecret = String(created.body.secret);
    assert.match(signingSecret, /^whsec_/);
    ok(
      await send(
        "DELETE",
        `/v1/buses/shop/rules/ship/targets/fulfil/secrets/${String(created.body.id)}`,
      ),
      204,
    );
    ok(
      await send("POST", "/v1/buses/shop/rules/ship/targets/fulfil:disable", { reason: "moving" }),
      200,
    );
    ok(await send("POST", "/v1/buses/shop/rules/ship/targets/fulfil:enable"), 200);
    ok(await send("POST", "/v1/archives", { name: "all-shop", bus: "shop" }), 201);
    ok(await send("DELETE", "/v1/archives/all-shop"), 204);

    // Reads, and changes refused, leave no entry.
    const countBefore = (await entries("limit=1000")).length;
    ok(await send("GET", "/v1/buses"), 200);
    ok(await send("GET", "/v1/buses/shop/rules/ship"), 200);
    ok(await send("GET", "/v1/connections/partner"), 200);
    ok(
      await send("POST", "/v1/test-event-pattern", {
        event: { source: "a" },
        pattern: { source: ["a"] },
      }),
      200,
    );
    ok(await send("POST", "/v1/buses/shop/rules", rule("ship", "dup")), 409);
    ok(await send("POST", "/v1/buses/shop/rules/ship:enable"), 200); // already enabled: no change
    assert.equal(
      (await entries("limit=1000")).length,
      countBefore,
      "reads and refused changes are not audited",
    );

    ok(await send("DELETE", "/v1/buses/shop?force=true"), 204);
    ok(await send("DELETE", "/v1/connections/partner"), 204);

    const all = (await entries("limit=1000")).reverse();
    assert.deepEqual(
      all.map((e) => e.action),
      [
        "bus.create",
        "connection.put",
        "rule.create",
        "rule.replace",
        "rule.disable",
        "rule.enable",
        "target.secret.create",
        "target.secret.revoke",
        "target.disable",
        "target.enable",
        "archive.create",
        "archive.delete",
        "bus.delete",
        "connection.delete",
      ],
    );
    for (const entry of all) {
      assert.deepEqual(entry.actor, { kind: "local" });
      assert.equal(entry.outcome, "succeeded");
      assert.equal(typeof entry.requestId, "string");
      assert.equal(entry.at, new Date(entry.atMs as number).toISOString());
    }
    const byAction = (action: string) => all.find((e) => e.action === action)!;
    assert.equal(byAction("rule.create").resource, "buses/shop/rules/ship");
    assert.equal(byAction("rule.create").requestId, "req-create-ship");
    assert.equal(byAction("rule.create").before, null);
    const replaced = byAction("rule.replace");
    assert.equal(((replaced.before as Obj).definition as Obj).description, "v1");
    assert.equal(((replaced.after as Obj).definition as Obj).description, "v2");
    assert.equal((byAction("rule.disable").after as Obj).enabled, false);
    assert.equal((byAction("target.disable").after as Obj).state, "disabled");
    assert.equal(byAction("target.disable").resource, "buses/shop/rules/ship/targets/fulfil");
    assert.deepEqual((byAction("bus.delete").before as Obj).apiRules, ["ship"]);
    assert.equal(byAction("bus.delete").after, null);
    const connection = byAction("connection.put").after as Obj;
    assert.deepEqual((connection.definition as Obj).authorization, {
      apiKey: { header: "x-api-key", value: "***" },
    });

    const table = auditTableText(service);
    for (const secret of [
      CONNECTION_SECRET,
      CONNECTION_HEADER_SECRET,
      WEBHOOK_HEADER_SECRET,
      signingSecret,
      signingSecret.slice(6),
    ]) {
      assert.ok(
        !table.includes(secret),
        `the audit table holds no secret (found ${secret.slice(0, 12)}...)`,
      );
    }
    assert.ok(table.includes("buses/shop/rules/ship"), "the table was read");
  });

  test("audit - filters by time, actor, action family and resource; pages newest first without gaps", async () => {
    for (const name of ["orders-eu", "orders-us", "ordersx"]) {
      assert.equal((await send("POST", "/v1/buses", { name })).status, 201);
    }
    const all = await entries("limit=1000");
    const ids = all.map((e) => e.id as number);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
      "newest first",
    );

    const paged: number[] = [];
    let before: number | undefined;
    for (let page = 0; page < 100; page++) {
      const answer = await send(
        "GET",
        `/v1/audit?limit=4${before === undefined ? "" : `&before=${before}`}`,
      );
      const list = answer.body.entries as Obj[];
      paged.push(...list.map((e) => e.id as number));
      if (answer.body.nextBefore === undefined) break;
      before = answer.body.nextBefore as number;
    }
    assert.deepEqual(paged, ids, "pages cover every entry once");

    assert.deepEqual(
      (await entries("resource=buses/orders-eu")).map((e) => e.resource),
      ["buses/orders-eu"],
    );
    const shop = await entries("resource=buses/shop");
    assert.ok(shop.length >= 5 && shop.every((e) => String(e.resource).startsWith("buses/shop")));
    assert.ok(
      shop.some((e) => String(e.resource).startsWith("buses/shop/rules/")),
      "a prefix selects what is under it",
    );
    const rules = await entries("action=rule.*");
    assert.deepEqual(
      new Set(rules.map((e) => e.action)),
      new Set(["rule.create", "rule.replace", "rule.disable", "rule.enable"]),
    );
    assert.equal((await entries("action=target.secret.*")).length, 2);
    assert.equal((await entries("action=bus.create")).length, 4);
    assert.equal((await entries("actor=local")).length, all.length);
    assert.equal((await entries("actor=rule-files")).length, 0);

    const newest = all[0]!;
    const atMs = newest.atMs as number;
    assert.ok((await entries(`from=${atMs}`)).some((e) => e.id === newest.id));
    assert.ok(!(await entries(`to=${atMs}`)).some((e) => e.id === newest.id), "to is exclusive");
    assert.equal((await entries("from=2099-01-01")).length, 0);

    const one = await send("GET", `/v1/audit/${String(newest.id)}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, newest);
    const missing = await send("GET", "/v1/audit/999999");
    assert.equal(missing.status, 404);
    assert.equal((missing.body.error as Obj).code, "AuditEntryNotFound");
    assert.equal((await send("GET", "/v1/audit/abc")).status, 404);
    const badAction = await send("GET", "/v1/audit?action=rule.explode");
    assert.equal(badAction.status, 400);
    assert.match(String((badAction.body.error as Obj).message), /^action: /);
    assert.equal((await send("GET", "/v1/audit?from=yesterday")).status, 400);
    assert.equal((await send("GET", "/v1/audit?limit=0")).status, 400);
    assert.equal((await send("POST", "/v1/audit", {})).status, 405);
  });

  test("audit - a reload of the rule files is recorded as rule-files with what changed; a refused one too; a no-op is not", async () => {
    const file = join(service.rulesDir, "orders.yaml");
    const reload = () => send("POST", "/v1/rules:reload");
    assert.equal((await reload()).status, 200);
    assert.equal(
      (await entries("actor=rule-files")).length,
      0,
      "nothing changed, nothing recorded",
    );

    writeFileSync(file, fileRules("second"));
    writeFileSync(
      join(service.rulesDir, "more.yaml"),
      "bus: more\nrules:\n  - name: added\n    pattern: {source: [x]}\n    targets: []\n",
    );
    assert.equal((await reload()).status, 200);
    const [changed] = await entries("actor=rule-files");
    assert.equal(changed?.action, "rules.reload");
    assert.equal(changed?.resource, "rule-files");
    assert.equal(changed?.outcome, "succeeded");
    assert.deepEqual((changed?.after as Obj).buses, {
      orders: { added: [], removed: [], changed: ["from-file"] },
      more: { added: ["added"], removed: [], changed: [] },
    });

    rmSync(join(service.rulesDir, "more.yaml"));
    writeFileSync(file, "bus: orders\nrules:\n  - name: broken\n    pattern: {source: 1}\n");
    assert.equal((await reload()).status, 400);
    const [refused] = await entries("actor=rule-files");
    assert.equal(refused?.outcome, "refused");
    assert.ok(((refused?.after as Obj).problems as Obj[]).length >= 1);
    assert.ok(
      !auditTableText(service).includes(FILE_SIGNING_SECRET.slice(6)),
      "no file signing secret",
    );
    writeFileSync(file, fileRules("second"));
    assert.equal((await reload()).status, 200);
    const [removed] = await entries("actor=rule-files");
    assert.deepEqual((removed?.after as Obj).buses, {
      more: { added: [], removed: ["added"], changed: [] },
    });
  });

  // Last: the first key turns auth on.
  test("audit - with keys: the actor is the key's id and name, the log needs admin, and no token is stored", async () => {
    const root = await send("POST", "/v1/keys", { name: "root", scopes: ["admin"] });
    assert.equal(root.status, 201);
    const admin = { authorization: `Bearer ${String(root.body.token)}` };
    const manager = await send("POST", "/v1/keys", { name: "deployer", scopes: ["manage"] }, admin);
    assert.equal(manager.status, 201);
    const asManager = { authorization: `Bearer ${String(manager.body.token)}` };
    assert.equal((await send("POST", "/v1/buses", { name: "keyed" }, asManager)).status, 201);
    assert.equal(
      (await send("POST", `/v1/keys/${String(manager.body.id)}:revoke`, undefined, admin)).status,
      200,
    );

    assert.equal(
      (await send("GET", "/v1/audit", undefined, asManager)).status,
      401,
      "a revoked key",
    );
    assert.equal((await send("GET", "/v1/audit")).status, 401);
    const reader = await send(
      "POST",
      "/v1/keys",
      { name: "reader", scopes: ["read", "manage"] },
      admin,
    );
    assert.equal(
      (
        await send("GET", "/v1/audit", undefined, {
          authorization: `Bearer ${String(reader.body.token)}`,
        })
      ).status,
      403,
    );

    const [bootstrap] = await entries(`resource=keys/${String(root.body.id)}`, admin);
    assert.deepEqual(
      bootstrap?.actor,
      { kind: "local" },
      "the bootstrap key was made without a key",
    );
    assert.equal((bootstrap?.after as Obj).name, "root");
    const [bus] = await entries("resource=buses/keyed", admin);
    assert.deepEqual(bus?.actor, { kind: "api-key", id: manager.body.id, name: "deployer" });
    assert.equal((await entries("actor=deployer", admin)).length, 1);
    assert.equal((await entries(`actor=${String(manager.body.id)}`, admin)).length, 1);
    const [revoked] = await entries("action=key.revoke", admin);
    assert.equal((revoked?.before as Obj).state, "active");
    assert.equal((revoked?.after as Obj).state, "revoked");
    assert.deepEqual(revoked?.actor, { kind: "api-key", id: root.body.id, name: "root" });

    const table = auditTableText(service);
    for (const key of [root.body, manager.body, reader.body]) {
      // `rb_<id>_<secret>`: the secret is base64url, which may hold "_" itself.
      const token = String(key.token);
      const secret = token.slice(token.indexOf("_", "rb_".length) + 1);
      assert.ok(secret.length >= 40, `the token's secret part: ${secret}`);
      assert.ok(!table.includes(secret), "no token secret");
      assert.ok(!table.includes(String(key.secretAccessKey)), "no SigV4 secret");
    }
  });
});

test("audit - retention deletes entries older than audit.retentionDays at start and keeps the rest", async () => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-audit-"));
  const first = await startTestService({ dir, config: { audit: { retentionDays: 30 } } });
  try {
    const nowMs = Date.now();
    const old = first.storage.audit.append({
      atMs: nowMs - 31 * 86_400_000,
      actor: { kind: "local" },
      action: "bus.create",
      resource: "buses/old",
      before: null,
      after: { name: "old" },
      outcome: "succeeded",
    });
    assert.equal((await first.post("/v1/buses", { name: "recent" })).status, 201);
    assert.ok(first.storage.audit.get(old.id) !== undefined);
    await first.close();
    const second = await startTestService({ dir, config: { audit: { retentionDays: 30 } } });
    try {
      // The pass at start runs without awaiting; give it a few turns.
      for (let i = 0; i < 50 && second.storage.audit.get(old.id) !== undefined; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(second.storage.audit.get(old.id), undefined, "the old entry is gone");
      const left = second.storage.audit.list({ limit: 10 });
      assert.deepEqual(
        left.map((e) => e.resource),
        ["buses/recent"],
      );
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
