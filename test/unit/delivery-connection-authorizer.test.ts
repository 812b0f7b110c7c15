/**
 * The request authorizer against real parts: connections in a real SQLite state file, rules
 * in a real registry, and a real OAuth 2 token endpoint on loopback (node:http) that records
 * what it was sent and answers as each test scripts it. Time is an injected clock.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import {
  createRequestAuthorizer,
  type AuthorizedParts,
  type RequestAuthorizer,
  type RequestAuthorizerOptions,
} from "../../src/delivery/connection-authorizer.js";
import type { ConnectionDefinition, OAuth2Authorization } from "../../src/log/connection-store.js";
import { openSqliteStorage, type SqliteStorage } from "../../src/log/sqlite/index.js";
import { createRuleRegistry, type RuleRegistry } from "../../src/rules/rule-registry.js";
import { silentLogger } from "../../src/types.js";

const BUS = "default";
const RULE = "to-partner";
const START_MS = 1_700_000_000_000;
const CLIENT_SECRET = "s3cret-client-value";
const ALLOW_LOOPBACK = { ...DEFAULT_CONFIG.delivery.outbound, allowLoopback: true };

/** One request the token endpoint received. */
interface TokenRequest {
  headers: IncomingHttpHeaders;
  form: URLSearchParams;
}

type TokenAnswer = { status: number; body: string; contentType?: string } | "hang";

interface TokenServer {
  url: string;
  requests: TokenRequest[];
  /** How the next requests are answered (`n` counts from 1); default a fresh token per request. */
  answer: (n: number) => TokenAnswer;
  close(): Promise<void>;
}

async function startTokenServer(): Promise<TokenServer> {
  const requests: TokenRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      requests.push({
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString("utf8")),
      });
      const answer = token.answer(requests.length);
      if (answer === "hang") {
        hanging.add(res);
        return;
      }
      res.writeHead(answer.status, { "content-type": answer.contentType ?? "application/json" });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const token: TokenServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`,
    requests,
    answer: (n) => ({
      status: 200,
      body: JSON.stringify({ access_token: `token-${n}`, token_type: "Bearer", expires_in: 3600 }),
    }),
    close: () =>
      new Promise((resolve) => {
        for (const res of hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return token;
}

interface Setup {
  storage: SqliteStorage;
  registry: RuleRegistry;
  tokens: TokenServer;
  clock: { now: number; nowMs(): number };
  authorizer: RequestAuthorizer;
  /** Stores (or replaces) an API connection. */
  putConnection(definition: ConnectionDefinition): void;
  /** Creates an API rule whose targets name these connections (target id = connection name, or `plain`). */
  putRule(connections: readonly string[]): void;
  target(targetId: string): { bus: string; rule: string; targetId: string };
}

async function setup(
  t: TestContext,
  options: Partial<RequestAuthorizerOptions> = {},
): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-authorizer-"));
  const storage = openSqliteStorage({ dataDir: join(dir, "data"), durability: "fsync-wal-only" });
  const registry = await createRuleRegistry({
    catalog: storage.catalog,
    connections: storage.connections,
    rulesDir: join(dir, "rules"),
    config: DEFAULT_CONFIG,
    logger: silentLogger,
  });
  const tokens = await startTokenServer();
  const clock = { now: START_MS, nowMs: () => clock.now };
  const authorizer = createRequestAuthorizer({
    connections: registry,
    logger: silentLogger,
    outbound: ALLOW_LOOPBACK,
    clock,
    env: (name) => ({ PARTNER_KEY: "key-from-env", PARTNER_PASSWORD: "pw-from-env" })[name],
    ...options,
  });
  t.after(async () => {
    await authorizer.close();
    await tokens.close();
    await registry.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    storage,
    registry,
    tokens,
    clock,
    authorizer,
    putConnection: (definition) =>
      storage.connections.put({
        name: definition.name,
        definition,
        createdAtMs: START_MS,
        updatedAtMs: START_MS,
      }),
    putRule: (connections) => {
      registry.putRule(
        BUS,
        {
          name: RULE,
          pattern: { source: ["shop"] },
          targets: [
            { id: "plain", webhook: { url: "https://partner.example.com/plain" } },
            ...connections.map((name) => ({
              id: name,
              webhook: { url: "https://partner.example.com/hook" },
              connection: name,
            })),
          ],
        },
        { mode: registry.listRules(BUS).some((r) => r.name === RULE) ? "replace" : "create" },
      );
    },
    target: (targetId) => ({ bus: BUS, rule: RULE, targetId }),
  };
}

function oauth2Connection(
  name: string,
  tokenUrl: string,
  extra: Partial<OAuth2Authorization> = {},
): ConnectionDefinition {
  return {
    name,
    authorization: {
      oauth2: { tokenUrl, clientId: "relaybus", clientSecret: CLIENT_SECRET, ...extra },
    },
  };
}

/** The parts, whether they came at once or after a fetch. */
async function parts(
  value: AuthorizedParts | undefined | Promise<AuthorizedParts | undefined>,
): Promise<AuthorizedParts | undefined> {
  return value;
}

test("connection authorizer - a target without a connection gets undefined at once, not a promise", async (t) => {
  const s = await setup(t);
  s.putConnection({
    name: "key",
    authorization: { apiKey: { header: "x-api-key", value: "literal" } },
  });
  s.putRule(["key"]);
  assert.equal(s.authorizer.authorize(s.target("plain"), START_MS), undefined);
  assert.equal(
    s.authorizer.authorize({ bus: BUS, rule: "no-such-rule", targetId: "x" }, START_MS),
    undefined,
  );
  assert.equal(s.tokens.requests.length, 0);
});

test("connection authorizer - api key and basic add their header, the headers and the query, env: values read", async (t) => {
  const s = await setup(t);
  s.putConnection({
    name: "key",
    authorization: { apiKey: { header: "X-Api-Key", value: "env:PARTNER_KEY" } },
    headers: { "X-Tenant": "acme", "x-secret-header": "env:PARTNER_KEY" },
    query: { tenant: "acme", sig: "a b&c" },
  });
  s.putConnection({
    name: "basic",
    authorization: { basic: { username: "relay", password: "env:PARTNER_PASSWORD" } },
  });
  s.putRule(["key", "basic"]);

  const key = s.authorizer.authorize(s.target("key"), START_MS);
  assert.ok(
    key !== undefined && !(key instanceof Promise),
    "static connections answer synchronously",
  );
  assert.deepEqual(key, {
    headers: { "x-tenant": "acme", "x-secret-header": "key-from-env", "x-api-key": "key-from-env" },
    query: { tenant: "acme", sig: "a b&c" },
  });
  assert.ok(Object.isFrozen(key) && Object.isFrozen(key.headers));
  assert.equal(
    s.authorizer.authorize(s.target("key"), START_MS + 1),
    key,
    "worked out once per definition",
  );

  const basic = s.authorizer.authorize(s.target("basic"), START_MS);
  assert.deepEqual(basic, {
    headers: { authorization: `Basic ${Buffer.from("relay:pw-from-env").toString("base64")}` },
    query: {},
  });
  assert.equal(s.tokens.requests.length, 0);
});

test("connection authorizer - an unset env: variable fails the attempt naming the variable", async (t) => {
  const s = await setup(t);
  s.putConnection({
    name: "key",
    authorization: { apiKey: { header: "x-api-key", value: "env:NOT_SET_ANYWHERE" } },
  });
  s.putRule(["key"]);
  assert.throws(
    () => s.authorizer.authorize(s.target("key"), START_MS),
    /connection "key" authorization\.apiKey\.value: environment variable NOT_SET_ANYWHERE is not set/,
  );
});

test("connection authorizer - oauth2 posts client credentials once, then the cached token goes synchronously", async (t) => {
  const s = await setup(t);
  s.putConnection({
    ...oauth2Connection("oauth", s.tokens.url, {
      scope: "events:write",
      audience: "https://partner.example.com",
      extraParams: { resource: "r1" },
    }),
    headers: { "x-tenant": "acme" },
    query: { region: "eu" },
  });
  s.putRule(["oauth"]);

  const first = s.authorizer.authorize(s.target("oauth"), START_MS);
  assert.ok(first instanceof Promise, "the first attempt waits for the token");
  assert.deepEqual(await first, {
    headers: { "x-tenant": "acme", authorization: "Bearer token-1" },
    query: { region: "eu" },
  });

  assert.equal(s.tokens.requests.length, 1);
  const sent = s.tokens.requests[0]!;
  assert.equal(sent.headers["content-type"], "application/x-www-form-urlencoded");
  assert.equal(
    sent.headers.authorization,
    `Basic ${Buffer.from(`relaybus:${CLIENT_SECRET}`).toString("base64")}`,
  );
  assert.deepEqual(Object.fromEntries(sent.form), {
    grant_type: "client_credentials",
    scope: "events:write",
    audience: "https://partner.example.com",
    resource: "r1",
  });

  const second = s.authorizer.authorize(s.target("oauth"), START_MS + 60_000);
  assert.ok(!(second instanceof Promise), "a cached token is used without waiting");
  assert.equal(second, await first, "the same parts object for the same token");
  assert.equal(s.tokens.requests.length, 1);
});

test("connection authorizer - oauth2 method body sends the client id and secret as form parameters", async (t) => {
  const s = await setup(t);
  s.putConnection(oauth2Connection("oauth", s.tokens.url, { method: "body" }));
  s.putRule(["oauth"]);
  await parts(s.authorizer.authorize(s.target("oauth"), START_MS));
  const sent = s.tokens.requests[0]!;
  assert.equal(sent.headers.authorization, undefined);
  assert.equal(sent.form.get("client_id"), "relaybus");
  assert.equal(sent.form.get("client_secret"), CLIENT_SECRET);
  assert.equal(sent.form.get("grant_type"), "client_credentials");
});

test("connection authorizer - concurrent attempts share one token request", async (t) => {
  const s = await setup(t);
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putRule(["oauth"]);
  const all = await Promise.all(
    Array.from({ length: 20 }, () => parts(s.authorizer.authorize(s.target("oauth"), START_MS))),
  );
  assert.equal(s.tokens.requests.length, 1);
  assert.ok(all.every((p) => p?.headers.authorization === "Bearer token-1"));
});

test("connection authorizer - a token is refreshed in the background before it expires, and an expired one is not used", async (t) => {
  const s = await setup(t);
  s.tokens.answer = (n) => ({
    status: 200,
    body: JSON.stringify({ access_token: `token-${n}`, token_type: "bearer", expires_in: 600 }),
  });
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putRule(["oauth"]);
  await parts(s.authorizer.authorize(s.target("oauth"), START_MS));

  // 600 s of life: refreshed 60 s before its end, at 540 s.
  const before = s.authorizer.authorize(s.target("oauth"), START_MS + 539_000);
  assert.equal((before as AuthorizedParts).headers.authorization, "Bearer token-1");
  assert.equal(s.tokens.requests.length, 1);

  s.clock.now = START_MS + 541_000;
  const during = s.authorizer.authorize(s.target("oauth"), START_MS + 541_000);
  assert.ok(!(during instanceof Promise), "the still valid token goes while the refresh runs");
  assert.equal(during?.headers.authorization, "Bearer token-1");
  await waitFor(() => s.tokens.requests.length === 2);
  await waitFor(
    () =>
      (s.authorizer.authorize(s.target("oauth"), START_MS + 542_000) as AuthorizedParts).headers
        .authorization === "Bearer token-2",
  );

  // The second token was fetched at 541 s; past its end (1,141 s) a new one is awaited.
  const expired = s.authorizer.authorize(s.target("oauth"), START_MS + 1_142_000);
  assert.ok(expired instanceof Promise);
  assert.equal((await expired)?.headers.authorization, "Bearer token-3");
});

test("connection authorizer - a refused token request fails the attempt with the endpoint's error, then backs off", async (t) => {
  const s = await setup(t);
  s.tokens.answer = () => ({
    status: 401,
    body: JSON.stringify({
      error: "invalid_client",
      error_description: "Client authentication failed",
    }),
  });
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putRule(["oauth"]);

  const failed = await parts(s.authorizer.authorize(s.target("oauth"), START_MS)).then(
    () => assert.fail("expected a rejection"),
    (error: Error) => error,
  );
  assert.match(
    failed.message,
    /^connection "oauth": token endpoint http:\/\/127\.0\.0\.1:\d+\/oauth\/token answered HTTP 401: invalid_client \(Client authentication failed\)$/,
  );
  assert.ok(!failed.message.includes(CLIENT_SECRET));

  // Within the backoff (1 s after the failure) the endpoint is not asked again.
  assert.throws(() => s.authorizer.authorize(s.target("oauth"), START_MS + 500), /HTTP 401/);
  assert.equal(s.tokens.requests.length, 1);

  s.tokens.answer = (n) => ({
    status: 200,
    body: JSON.stringify({ access_token: `token-${n}`, expires_in: 3600 }),
  });
  s.clock.now = START_MS + 1_000;
  const recovered = await parts(s.authorizer.authorize(s.target("oauth"), START_MS + 1_000));
  assert.equal(recovered?.headers.authorization, "Bearer token-2");
  assert.equal(s.tokens.requests.length, 2);
});

test("connection authorizer - backoff after failures grows, and a success resets it", async (t) => {
  const s = await setup(t);
  s.tokens.answer = () => ({ status: 503, body: "down" });
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putRule(["oauth"]);
  const fail = async (atMs: number) => {
    s.clock.now = atMs;
    await assert.rejects(
      parts(s.authorizer.authorize(s.target("oauth"), atMs)),
      /answered HTTP 503$/,
    );
  };
  await fail(START_MS); // backoff 1 s
  await fail(START_MS + 1_000); // backoff 2 s
  assert.throws(() => s.authorizer.authorize(s.target("oauth"), START_MS + 2_999), /HTTP 503/);
  assert.equal(s.tokens.requests.length, 2);
  await fail(START_MS + 3_000); // backoff 4 s
  assert.equal(s.tokens.requests.length, 3);

  s.tokens.answer = (n) => ({
    status: 200,
    body: JSON.stringify({ access_token: `token-${n}`, expires_in: 3600 }),
  });
  s.clock.now = START_MS + 7_000;
  assert.equal(
    (await parts(s.authorizer.authorize(s.target("oauth"), START_MS + 7_000)))?.headers
      .authorization,
    "Bearer token-4",
  );
  // After the success, one more failure backs off 1 s again, not 8 s.
  s.tokens.answer = () => ({ status: 503, body: "down" });
  s.authorizer.unauthorized(s.target("oauth"));
  await fail(START_MS + 8_000);
  assert.throws(() => s.authorizer.authorize(s.target("oauth"), START_MS + 8_999), /HTTP 503/);
  await fail(START_MS + 9_000);
  assert.equal(s.tokens.requests.length, 6);
});

test("connection authorizer - a 401 from the target drops the token, and the next attempt fetches a new one", async (t) => {
  const s = await setup(t);
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putConnection({
    name: "other",
    authorization: { apiKey: { header: "x-api-key", value: "k" } },
  });
  s.putRule(["oauth", "other"]);
  await parts(s.authorizer.authorize(s.target("oauth"), START_MS));
  s.authorizer.unauthorized(s.target("other")); // not an oauth2 connection: nothing happens
  s.authorizer.unauthorized(s.target("plain"));
  assert.ok(!(s.authorizer.authorize(s.target("oauth"), START_MS) instanceof Promise));

  s.authorizer.unauthorized(s.target("oauth"));
  const next = s.authorizer.authorize(s.target("oauth"), START_MS + 1);
  assert.ok(next instanceof Promise);
  assert.equal((await next)?.headers.authorization, "Bearer token-2");
});

test("connection authorizer - a changed connection drops its token; a deleted one fails naming it", async (t) => {
  const s = await setup(t);
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putRule(["oauth"]);
  await parts(s.authorizer.authorize(s.target("oauth"), START_MS));
  s.putConnection(oauth2Connection("oauth", s.tokens.url, { scope: "new-scope" }));
  const changed = await parts(s.authorizer.authorize(s.target("oauth"), START_MS + 1));
  assert.equal(changed?.headers.authorization, "Bearer token-2");
  assert.equal(s.tokens.requests[1]?.form.get("scope"), "new-scope");

  s.storage.connections.delete("oauth");
  assert.throws(
    () => s.authorizer.authorize(s.target("oauth"), START_MS + 2),
    /connection "oauth" does not exist \(named by target "oauth" of rule "to-partner"\)/,
  );
});

test("connection authorizer - a token endpoint on a loopback address is refused unless delivery.outbound allows it", async (t) => {
  const s = await setup(t, { outbound: DEFAULT_CONFIG.delivery.outbound });
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putRule(["oauth"]);
  await assert.rejects(
    parts(s.authorizer.authorize(s.target("oauth"), START_MS)),
    /connection "oauth": token request to http:\/\/127\.0\.0\.1:\d+\/oauth\/token failed: 127\.0\.0\.1 is a loopback address; set delivery\.outbound\.allowLoopback: true/,
  );
  assert.equal(s.tokens.requests.length, 0, "nothing reached the endpoint");
});

test("connection authorizer - a hanging endpoint times out, and an oversized or tokenless answer fails", async (t) => {
  const s = await setup(t, { tokenTimeoutMs: 200, maxTokenResponseBytes: 1_000 });
  s.putConnection(oauth2Connection("oauth", s.tokens.url));
  s.putRule(["oauth"]);
  s.tokens.answer = () => "hang";
  await assert.rejects(
    parts(s.authorizer.authorize(s.target("oauth"), START_MS)),
    /gave no complete answer within 200 ms/,
  );

  s.tokens.answer = () => ({
    status: 200,
    body: JSON.stringify({ access_token: "x".repeat(2_000) }),
  });
  s.clock.now += 60_000;
  await assert.rejects(
    parts(s.authorizer.authorize(s.target("oauth"), s.clock.now)),
    /the answer is larger than 1000 bytes/,
  );

  s.tokens.answer = () => ({ status: 200, body: JSON.stringify({ token_type: "Bearer" }) });
  s.clock.now += 60_000;
  await assert.rejects(
    parts(s.authorizer.authorize(s.target("oauth"), s.clock.now)),
    /answered without an access_token/,
  );

  s.tokens.answer = () => ({
    status: 200,
    body: "access_token=form-token&token_type=bearer&expires_in=60",
    contentType: "application/x-www-form-urlencoded",
  });
  s.clock.now += 60_000;
  assert.equal(
    (await parts(s.authorizer.authorize(s.target("oauth"), s.clock.now)))?.headers.authorization,
    "Bearer form-token",
  );
});

/** Polls `check` on the event loop until it holds (2 s at most). */
async function waitFor(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail("condition not met within 2 s");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
