/**
 * Connections end to end: a real Relaybus whose rule file declares an API key, a basic and
 * an OAuth 2 connection (its token endpoint a real node:http server on loopback) delivers an
 * event to a real receiver, which sees each target's authorization, the connection's headers
 * and its query parameters; a target without a connection gets none of them.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver, type ReceivedRequest } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

const API_KEY_ENV = "RELAYBUS_TEST_DELIVERY_API_KEY";
const CLIENT_SECRET_ENV = "RELAYBUS_TEST_DELIVERY_CLIENT_SECRET";
const API_KEY = "key-0f1e2d3c";
const CLIENT_SECRET = "client-secret-4b5a6978";

interface TokenEndpoint {
  url: string;
  requests: { headers: IncomingHttpHeaders; form: URLSearchParams }[];
  /** The status of answer `n` (from 1); 200 answers carry `token-<n>`. Default 200. */
  statusOf: (n: number) => number;
  close(): Promise<void>;
}

async function startTokenEndpoint(): Promise<TokenEndpoint> {
  const endpoint: TokenEndpoint = {
    url: "",
    requests: [],
    statusOf: () => 200,
    close: () => Promise.resolve(),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      endpoint.requests.push({
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString("utf8")),
      });
      const n = endpoint.requests.length;
      const status = endpoint.statusOf(n);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          status === 200
            ? { access_token: `token-${n}`, token_type: "Bearer", expires_in: 3600 }
            : { error: "temporarily_unavailable" },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
  endpoint.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return endpoint;
}

function ruleFile(receiver: Receiver, tokenUrl: string): string {
  return `bus: default
connections:
  - name: key-conn
    authorization:
      apiKey: {header: X-Api-Key, value: "env:${API_KEY_ENV}"}
    headers: {X-Tenant: acme}
    query: {tenant: acme, sig: "a b&c"}
  - name: basic-conn
    authorization:
      basic: {username: relay, password: basic-password}
  - name: oauth-conn
    authorization:
      oauth2:
        tokenUrl: "${tokenUrl}"
        clientId: relaybus
        clientSecret: "env:${CLIENT_SECRET_ENV}"
        scope: events:write
    query: {region: eu}
rules:
  - name: to-partner
    pattern: {source: [shop]}
    targets:
      - id: key
        webhook: {url: "${receiver.url}/key?existing=1"}
        connection: key-conn
      - id: basic
        webhook: {url: "${receiver.url}/basic"}
        connection: basic-conn
      - id: oauth
        webhook: {url: "${receiver.url}/oauth"}
        connection: oauth-conn
        retry: {maxAttempts: 20, delaysMs: [200]}
      - id: plain
        webhook: {url: "${receiver.url}/plain"}
`;
}

async function setup(
  t: TestContext,
  statusOf?: (n: number) => number,
): Promise<{ service: TestService; receiver: Receiver; tokens: TokenEndpoint }> {
  process.env[API_KEY_ENV] = API_KEY;
  process.env[CLIENT_SECRET_ENV] = CLIENT_SECRET;
  const receiver = await createReceiver();
  const tokens = await startTokenEndpoint();
  if (statusOf !== undefined) tokens.statusOf = statusOf;
  const service = await startTestService({
    rules: { "partner.yaml": ruleFile(receiver, tokens.url) },
  });
  t.after(async () => {
    await service.close();
    await receiver.close();
    await tokens.close();
    delete process.env[API_KEY_ENV];
    delete process.env[CLIENT_SECRET_ENV];
    await assertNothingOpen();
  });
  return { service, receiver, tokens };
}

async function publish(service: TestService): Promise<void> {
  const answer = await service.post("/v1/events", {
    Entries: [{ Source: "shop", DetailType: "order.created", Detail: '{"id": 1}' }],
  });
  assert.equal(answer.status, 200, await answer.clone().text());
  assert.equal(((await answer.json()) as { FailedEntryCount: number }).FailedEntryCount, 0);
}

function queryOf(request: ReceivedRequest): URLSearchParams {
  return new URL(request.path, "http://receiver").searchParams;
}

test("delivery connections - each target's requests carry its connection's authorization, headers and query", async (t) => {
  const { service, receiver, tokens } = await setup(t);
  await publish(service);
  const [key] = await receiver.waitFor(1, 10_000, "/key");
  const [basic] = await receiver.waitFor(1, 10_000, "/basic");
  const [oauth] = await receiver.waitFor(1, 10_000, "/oauth");
  const [plain] = await receiver.waitFor(1, 10_000, "/plain");

  assert.equal(key!.headers["x-api-key"], API_KEY);
  assert.equal(key!.headers["x-tenant"], "acme");
  assert.deepEqual(Object.fromEntries(queryOf(key!)), {
    existing: "1",
    tenant: "acme",
    sig: "a b&c",
  });
  assert.equal(key!.headers.authorization, undefined);
  assert.ok(key!.headers["webhook-id"] !== undefined, "Relaybus's own headers stay");

  assert.equal(
    basic!.headers.authorization,
    `Basic ${Buffer.from("relay:basic-password").toString("base64")}`,
  );
  assert.equal(basic!.path, "/basic");

  assert.equal(oauth!.headers.authorization, "Bearer token-1");
  assert.deepEqual(Object.fromEntries(queryOf(oauth!)), { region: "eu" });
  assert.equal(tokens.requests.length, 1);
  const tokenRequest = tokens.requests[0]!;
  assert.equal(tokenRequest.form.get("grant_type"), "client_credentials");
  assert.equal(tokenRequest.form.get("scope"), "events:write");
  assert.equal(
    tokenRequest.headers.authorization,
    `Basic ${Buffer.from(`relaybus:${CLIENT_SECRET}`).toString("base64")}`,
  );

  for (const header of ["authorization", "x-api-key", "x-tenant"])
    assert.equal(plain!.headers[header], undefined, header);
  assert.equal(plain!.path, "/plain");

  // A second event reuses the cached token.
  await publish(service);
  const second = await receiver.waitFor(2, 10_000, "/oauth");
  assert.equal(second[1]!.headers.authorization, "Bearer token-1");
  assert.equal(tokens.requests.length, 1);
});

test("delivery connections - a token endpoint that fails at first only delays the delivery: the attempt is retried", async (t) => {
  const { service, receiver, tokens } = await setup(t, (n) => (n === 1 ? 503 : 200));
  await publish(service);
  const [oauth] = await receiver.waitFor(1, 15_000, "/oauth");
  assert.equal(oauth!.headers.authorization, "Bearer token-2");
  assert.equal(tokens.requests.length, 2, "the failed fetch was retried once, after its backoff");
  assert.equal(receiver.requestsTo("/oauth").length, 1, "nothing was sent without a token");
});
