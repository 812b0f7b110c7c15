/**
 * Connection definitions: what validation refuses and says (never quoting a secret), and
 * what the API shows of them (literal secrets as "***", `env:NAME` as is).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { redactConnection } from "../../src/api/redact-secrets.js";
import { resolveConnection, type ConnectionDefinition } from "../../src/log/connection-store.js";
import { validateConnectionDefinitionShape } from "../../src/rules/validate-rule.js";

const SECRET = "literal-secret-9f8e7d";
const ENV = (name: string) => ({ PARTNER_KEY: "from-env" })[name];

function problems(value: unknown): string[] {
  return validateConnectionDefinitionShape(value, ENV).map((p) => `${p.pointer}: ${p.message}`);
}

test("connection definitions - each kind of authorization passes, with headers, query and env: secrets", () => {
  assert.deepEqual(
    problems({
      name: "k",
      authorization: { apiKey: { header: "x-api-key", value: "env:PARTNER_KEY" } },
    }),
    [],
  );
  assert.deepEqual(
    problems({
      name: "b",
      description: "Partner basic auth",
      authorization: { basic: { username: "relay", password: SECRET } },
      headers: { "x-tenant": "acme" },
      query: { tenant: "acme" },
    }),
    [],
  );
  assert.deepEqual(
    problems({
      name: "o",
      authorization: {
        oauth2: {
          tokenUrl: "https://auth.example.com/oauth/token",
          clientId: "relaybus",
          clientSecret: "env:PARTNER_KEY",
          scope: "events:write",
          audience: "https://api.example.com",
          extraParams: { resource: "r" },
          method: "body",
        },
      },
    }),
    [],
  );
});

test("connection definitions - exactly one authorization, and no unknown keys", () => {
  assert.deepEqual(problems({ name: "x", authorization: {} }), [
    "/authorization: needs exactly one of apiKey, basic, oauth2, got none",
  ]);
  assert.deepEqual(
    problems({
      name: "x",
      authorization: {
        apiKey: { header: "x-k", value: SECRET },
        basic: { username: "u", password: SECRET },
      },
    }),
    ["/authorization: needs exactly one of apiKey, basic, oauth2, got apiKey, basic"],
  );
  assert.deepEqual(problems({ name: "x", authorization: { bearer: { token: SECRET } } }), [
    '/authorization/bearer: unknown key "bearer" (expected one of: apiKey, basic, oauth2)',
  ]);
  assert.deepEqual(
    problems({ name: "bad name", authorization: { basic: { username: "u", password: "p" } } }),
    [`/name: must be 1 to 64 letters, digits, '.', '_' or '-', got "bad name"`],
  );
  assert.deepEqual(problems({ name: "x" }), [': missing required key "authorization"']);
});

test("connection definitions - headers Relaybus sets itself, or the authorization sets, are refused", () => {
  const found = problems({
    name: "x",
    authorization: { basic: { username: "u", password: "p" } },
    headers: {
      "webhook-id": "a",
      "Webhook-Signature": "b",
      "Content-Type": "c",
      "ce-type": "d",
      Authorization: "e",
      "x-ok": "f",
    },
  });
  assert.equal(found.length, 5, found.join("\n"));
  for (const name of ["webhook-id", "Webhook-Signature", "Content-Type", "ce-type"]) {
    assert.ok(
      found.some((p) =>
        p.startsWith(`/headers/${name}: "${name}" is a header Relaybus sets itself`),
      ),
      name,
    );
  }
  assert.ok(
    found.includes(
      '/headers/Authorization: "Authorization" is set by the connection\'s authorization; remove it from headers',
    ),
  );
  assert.match(
    problems({
      name: "x",
      authorization: { apiKey: { header: "webhook-timestamp", value: "v" } },
    }).join(),
    /^\/authorization\/apiKey\/header: "webhook-timestamp" is a header Relaybus sets itself/,
  );
  assert.deepEqual(
    problems({
      name: "x",
      authorization: { apiKey: { header: "X-Api-Key", value: "v" } },
      headers: { "x-api-key": "again" },
    }),
    [
      '/headers/x-api-key: "x-api-key" is set by the connection\'s authorization; remove it from headers',
    ],
  );
});

test("connection definitions - token parameters set twice, a user name with a colon, and unset env: variables are refused", () => {
  assert.deepEqual(
    problems({
      name: "o",
      authorization: {
        oauth2: {
          tokenUrl: "https://a.example.com/t",
          clientId: "c",
          clientSecret: "env:NOT_SET_HERE",
          extraParams: { grant_type: "password", ok: "1" },
        },
      },
    }),
    [
      '/authorization/oauth2/extraParams/grant_type: "grant_type" is set by the oauth2 fields (tokenUrl, clientId, clientSecret, scope, audience); remove it from extraParams',
      "/authorization/oauth2/clientSecret: environment variable NOT_SET_HERE is not set",
    ],
  );
  assert.deepEqual(
    problems({ name: "b", authorization: { basic: { username: "a:b", password: "p" } } }),
    [
      "/authorization/basic/username: must not contain ':' (RFC 7617: it separates the user name from the password)",
    ],
  );
  assert.deepEqual(
    problems({
      name: "k",
      authorization: { apiKey: { header: "k", value: "env:lower-case!" } },
      query: { q: "env:ALSO_UNSET" },
    }),
    [
      '/authorization/apiKey/value: "env:lower-case!" does not name an environment variable (env:NAME, letters, digits and _)',
      "/query/q: environment variable ALSO_UNSET is not set",
    ],
  );
});

test("connection definitions - messages never quote a secret value", () => {
  const cases: unknown[] = [
    { name: "x", authorization: { basic: { username: "u", password: SECRET.repeat(400) } } },
    { name: "x", authorization: { apiKey: { header: "x-k", value: 12345678987 } } },
    { name: "x", authorization: SECRET },
    {
      name: "x",
      authorization: { basic: { username: "u", password: "p" } },
      headers: { "x-k": 98765432123 },
    },
    {
      name: "x",
      authorization: {
        oauth2: {
          tokenUrl: `ftp://${SECRET}@a.example.com/`,
          clientId: "c",
          clientSecret: [SECRET],
        },
      },
    },
  ];
  for (const value of cases) {
    const found = problems(value).join("\n");
    assert.notEqual(found, "", JSON.stringify(value).slice(0, 80));
    for (const secret of [SECRET, "12345678987", "98765432123"])
      assert.ok(!found.includes(secret), found);
  }
  assert.match(
    problems(cases[1]).join(),
    /\/authorization\/apiKey\/value: must be string, got a number \(value not shown\)/,
  );
});

test("connection definitions - the API shows literal secrets as *** and env: references as they are", () => {
  const connection: ConnectionDefinition = {
    name: "partner",
    description: "Partner API",
    authorization: {
      oauth2: {
        tokenUrl: "https://a.example.com/t",
        clientId: "relaybus",
        clientSecret: SECRET,
        scope: "s",
      },
    },
    headers: { "x-tenant": "acme", "x-key": "env:PARTNER_KEY" },
    query: { sig: SECRET },
  };
  assert.deepEqual(redactConnection(connection), {
    name: "partner",
    description: "Partner API",
    authorization: {
      oauth2: {
        tokenUrl: "https://a.example.com/t",
        clientId: "relaybus",
        clientSecret: "***",
        scope: "s",
      },
    },
    headers: { "x-tenant": "***", "x-key": "env:PARTNER_KEY" },
    query: { sig: "***" },
  });
  assert.equal(
    connection.authorization &&
      "oauth2" in connection.authorization &&
      connection.authorization.oauth2.clientSecret,
    SECRET,
    "the original is unchanged",
  );
  assert.deepEqual(
    redactConnection({ name: "b", authorization: { basic: { username: "u", password: "env:P" } } })
      .authorization,
    {
      basic: { username: "u", password: "env:P" },
    },
  );
  assert.deepEqual(
    redactConnection({ name: "k", authorization: { apiKey: { header: "x-k", value: SECRET } } })
      .authorization,
    {
      apiKey: { header: "x-k", value: "***" },
    },
  );
});

test("connection definitions - resolving reads every env: secret and leaves literals", () => {
  const resolved = resolveConnection(
    {
      name: "k",
      authorization: { apiKey: { header: "x-k", value: "env:PARTNER_KEY" } },
      headers: { a: "literal", b: "env:PARTNER_KEY" },
    },
    ENV,
  );
  assert.deepEqual(resolved, {
    name: "k",
    authorization: { apiKey: { header: "x-k", value: "from-env" } },
    headers: { a: "literal", b: "from-env" },
  });
  assert.throws(
    () =>
      resolveConnection(
        { name: "k", authorization: { basic: { username: "u", password: "env:GONE" } } },
        ENV,
      ),
    /^Error: connection "k" authorization\.basic\.password: environment variable GONE is not set$/,
  );
});
