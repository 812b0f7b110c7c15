/**
 * The connections API on a real Relaybus: create, replace, read (secrets redacted), delete,
 * and the rules that use them; one namespace with the rule files' connections, which the
 * API cannot change.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

const ENV_NAME = "RELAYBUS_TEST_CONNECTIONS_API_KEY";
const LITERAL_SECRET = "literal-secret-from-the-api-1b2c";
const FILE_SECRET = "literal-secret-from-the-file-3d4e";

const FILES = {
  "connections.yaml": `connections:
  - name: from-file
    authorization:
      basic: {username: relay, password: ${FILE_SECRET}}
`,
  "orders.yaml": `bus: orders
rules:
  - name: file-rule
    pattern: {source: [shop]}
    targets:
      - id: hook
        webhook: {url: "https://partner.example.com/hook"}
        connection: from-file
`,
};

describe("connections api", () => {
  let service: TestService;

  async function call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Obj }> {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Obj) };
  }

  function errorOf(answer: { status: number; body: Obj }, status: number, code: string): Obj {
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    const error = answer.body.error as Obj;
    assert.equal(error.code, code, JSON.stringify(answer.body));
    return error;
  }

  before(async () => {
    process.env[ENV_NAME] = "key-from-the-environment";
    service = await startTestService({ rules: FILES });
  });
  after(async () => {
    await service.close();
    delete process.env[ENV_NAME];
    await assertNothingOpen();
  });

  test("connections api - PUT creates (201) then replaces (200); GET shows env: references but never a literal secret", async () => {
    const definition = {
      description: "Partner API",
      authorization: { apiKey: { header: "x-api-key", value: `env:${ENV_NAME}` } },
      headers: { "x-tenant": LITERAL_SECRET },
      query: { region: "eu" },
    };
    const created = await call("PUT", "/v1/connections/partner", definition);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.origin, { kind: "api" });
    assert.deepEqual(created.body.definition, {
      ...definition,
      name: "partner",
      headers: { "x-tenant": "***" },
      query: { region: "***" },
    });
    assert.deepEqual(created.body.usedBy, []);
    const createdAtMs = created.body.createdAtMs as number;

    const replaced = await call("PUT", "/v1/connections/partner", {
      name: "partner",
      authorization: { basic: { username: "relay", password: LITERAL_SECRET } },
    });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
    assert.equal(replaced.body.createdAtMs, createdAtMs);
    assert.ok((replaced.body.updatedAtMs as number) >= createdAtMs);

    const read = await call("GET", "/v1/connections/partner");
    assert.equal(read.status, 200);
    assert.deepEqual((read.body.definition as Obj).authorization, {
      basic: { username: "relay", password: "***" },
    });
    const list = await call("GET", "/v1/connections");
    assert.deepEqual(
      (list.body.connections as Obj[]).map((c) => [c.name, (c.origin as Obj).kind]),
      [
        ["from-file", "file"],
        ["partner", "api"],
      ],
    );
    const everything = JSON.stringify([created.body, replaced.body, read.body, list.body]);
    assert.ok(
      !everything.includes(LITERAL_SECRET) && !everything.includes(FILE_SECRET),
      everything,
    );
  });

  test("connections api - a bad connection is InvalidConnection naming the field; an unset env: variable is named", async () => {
    const reserved = errorOf(
      await call("PUT", "/v1/connections/bad", {
        authorization: { apiKey: { header: "webhook-signature", value: "x" } },
      }),
      400,
      "InvalidConnection",
    );
    assert.match(
      String(reserved.message),
      /^\/authorization\/apiKey\/header: "webhook-signature" is a header Relaybus sets itself/,
    );
    const unset = errorOf(
      await call("PUT", "/v1/connections/bad", {
        authorization: { basic: { username: "u", password: "env:RELAYBUS_TEST_NEVER_SET" } },
      }),
      400,
      "InvalidConnection",
    );
    assert.equal(
      unset.message,
      "/authorization/basic/password: environment variable RELAYBUS_TEST_NEVER_SET is not set",
    );
    const two = errorOf(
      await call("PUT", "/v1/connections/bad", {
        authorization: {
          basic: { username: "u", password: LITERAL_SECRET },
          apiKey: { header: "k", value: LITERAL_SECRET },
        },
      }),
      400,
      "InvalidConnection",
    );
    assert.ok(!JSON.stringify(two).includes(LITERAL_SECRET));
    errorOf(
      await call("PUT", "/v1/connections/bad", {
        name: "other",
        authorization: { basic: { username: "u", password: "p" } },
      }),
      400,
      "ValidationError",
    );
    errorOf(await call("PUT", "/v1/connections/bad", [1]), 400, "ValidationError");
    errorOf(await call("GET", "/v1/connections/bad"), 404, "ConnectionNotFound");
  });

  test("connections api - a rule file's connection is shown with its origin and cannot be changed or deleted here", async () => {
    const read = await call("GET", "/v1/connections/from-file");
    assert.equal(read.status, 200);
    assert.deepEqual(read.body.origin, {
      kind: "file",
      file: `${service.rulesDir}/connections.yaml`,
      line: 2,
      pointer: "/connections/0",
    });
    assert.deepEqual(read.body.usedBy, [{ bus: "orders", rule: "file-rule", target: "hook" }]);
    assert.equal(read.body.createdAtMs, undefined);
    const put = errorOf(
      await call("PUT", "/v1/connections/from-file", {
        authorization: { basic: { username: "u", password: "p" } },
      }),
      409,
      "ConnectionManagedByFile",
    );
    assert.match(
      String(put.message),
      /is declared in .*connections\.yaml:2; change the file instead/,
    );
    errorOf(await call("DELETE", "/v1/connections/from-file"), 409, "ConnectionManagedByFile");
  });

  test("connections api - rules must name existing connections, and a used connection is deleted only with force=true", async () => {
    const rule = (connection: string) => ({
      name: "uses-connection",
      pattern: { source: ["shop"] },
      targets: [{ id: "t", webhook: { url: "https://partner.example.com/t" }, connection }],
    });
    const unknown = errorOf(
      await call("POST", "/v1/buses/default/rules", rule("ghost")),
      400,
      "InvalidRule",
    );
    assert.match(
      String(unknown.message),
      /^\/targets\/0\/connection: connection "ghost" does not exist/,
    );

    assert.equal(
      (
        await call("PUT", "/v1/connections/used", {
          authorization: { basic: { username: "u", password: "p" } },
        })
      ).status,
      201,
    );
    assert.equal((await call("POST", "/v1/buses/default/rules", rule("used"))).status, 201);
    assert.deepEqual((await call("GET", "/v1/connections/used")).body.usedBy, [
      { bus: "default", rule: "uses-connection", target: "t" },
    ]);

    const inUse = errorOf(await call("DELETE", "/v1/connections/used"), 409, "ConnectionInUse");
    assert.deepEqual((inUse.details as Obj).usedBy, [
      { bus: "default", rule: "uses-connection", target: "t" },
    ]);
    errorOf(await call("DELETE", "/v1/connections/used?force=maybe"), 400, "ValidationError");
    assert.equal((await call("DELETE", "/v1/connections/used?force=true")).status, 204);
    errorOf(await call("GET", "/v1/connections/used"), 404, "ConnectionNotFound");
    errorOf(await call("DELETE", "/v1/connections/used"), 404, "ConnectionNotFound");

    assert.equal(
      (
        await call("PUT", "/v1/connections/unused", {
          authorization: { basic: { username: "u", password: "p" } },
        })
      ).status,
      201,
    );
    assert.equal((await call("DELETE", "/v1/connections/unused")).status, 204);
    errorOf(await call("POST", "/v1/connections"), 405, "MethodNotAllowed");
  });
});

test("connections api - API connections survive a restart, and a rule file may not take their name", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-connections-api-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const first = await startTestService({ dir });
  try {
    const created = await fetch(`${first.url}/v1/connections/kept`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ authorization: { basic: { username: "u", password: "p" } } }),
    });
    assert.equal(created.status, 201);
  } finally {
    await first.close();
  }

  const second = await startTestService({ dir });
  try {
    const read = await second.get("/v1/connections/kept");
    assert.equal(read.status, 200);
    assert.deepEqual(((await read.json()) as Obj).origin, { kind: "api" });
    writeFileSync(
      join(second.rulesDir, "kept.yaml"),
      "connections:\n  - name: kept\n    authorization: {basic: {username: u, password: p}}\n",
    );
    const reload = await second.post("/v1/rules:reload", "");
    const answer = (await reload.json()) as { error: { code: string; message: string } };
    assert.equal(reload.status, 400);
    assert.equal(answer.error.code, "RulesReloadFailed");
    assert.match(
      answer.error.message,
      /kept\.yaml:2: \/connections\/0\/name: connection "kept" already exists as an API connection/,
    );
  } finally {
    await second.close();
  }
});
