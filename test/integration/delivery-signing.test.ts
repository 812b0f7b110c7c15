/**
 * Standard Webhooks signing end to end: a real Relaybus delivers to a real receiver on
 * loopback, and every request is verified the way a receiver would verify it — `v1` (HMAC)
 * signatures with the `standardwebhooks` package's `Webhook.verify`, `v1a` (ed25519) ones
 * with node:crypto's `verify` and the `whpk_` public key (that package checks `v1` only).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { Webhook } from "standardwebhooks";
import Database from "better-sqlite3";
import { generateSigningSecret } from "../../src/delivery/sign-webhook.js";
import type { StoredTargetSecret } from "../../src/log/log-engine.js";
import {
  applyMigrations,
  openSqliteStorage,
  STATE_FILE_NAME,
  STATE_MIGRATIONS,
  STATE_SCHEMA_VERSION,
} from "../../src/log/sqlite/index.js";
import { checkRuleFiles } from "../../src/rules/load-rule-files.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver, type ReceivedRequest } from "../helpers/receiver.js";
import { freePort, spawnRelaybus } from "../helpers/relaybus-process.js";
import { startTestService, type TestService } from "../helpers/service.js";
import { verifiesEd25519 } from "../helpers/verify-ed25519.js";

type Obj = Record<string, unknown>;

const SECRETS = "/v1/buses/default/rules/signed/targets/hook/secrets";
/** A serialised ed25519 private key (a hint, `whsk_…` and hex, is not one). */
const PRIVATE_KEY = /whsk_[A-Za-z0-9+/]{8}/;

/** A receiver and a service, both closed (and checked for leaks) after the test. */
async function setup(
  t: TestContext,
  options: { rules?: (receiver: Receiver) => Record<string, string> } = {},
): Promise<{ receiver: Receiver; service: TestService }> {
  const receiver = await createReceiver();
  const service = await startTestService(
    options.rules === undefined ? {} : { rules: options.rules(receiver) },
  );
  t.after(async () => {
    await service.close();
    await receiver.close();
    await assertNothingOpen();
  });
  return { receiver, service };
}

/** An API rule on `default` whose one target, `hook`, posts to the receiver's `/hook`. */
async function createSignedRule(
  service: TestService,
  receiver: Receiver,
  retry: Obj = { maxAttempts: 1 },
): Promise<void> {
  const created = await service.post("/v1/buses/default/rules", {
    name: "signed",
    pattern: { source: ["shop.orders"] },
    targets: [{ id: "hook", webhook: { url: `${receiver.url}/hook` }, retry }],
  });
  assert.equal(created.status, 201, await created.clone().text());
}

async function createSecret(service: TestService, body?: Obj, path = SECRETS): Promise<Obj> {
  const response = await service.post(path, body ?? "");
  const answer = (await response.json()) as Obj;
  assert.equal(response.status, 201, JSON.stringify(answer));
  assert.equal(response.headers.get("cache-control"), "no-store");
  return answer;
}

async function listSecrets(service: TestService, path = SECRETS): Promise<Obj[]> {
  const response = await service.get(path);
  const answer = (await response.json()) as { secrets: Obj[] };
  assert.equal(response.status, 200, JSON.stringify(answer));
  return answer.secrets;
}

async function publish(service: TestService, n: number, source = "shop.orders"): Promise<void> {
  const response = await service.post("/v1/events", {
    Entries: [
      {
        Source: source,
        DetailType: "order.created",
        Detail: JSON.stringify({ n, note: "café ☕" }),
        EventBusName: "default",
      },
    ],
  });
  const answer = (await response.json()) as { FailedEntryCount: number };
  assert.equal(answer.FailedEntryCount, 0);
}

function headersOf(request: ReceivedRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers))
    if (typeof value === "string") out[name] = value;
  return out;
}

/** True when the standardwebhooks package accepts the request with `secret`. */
function verifiesHmac(secret: string, request: ReceivedRequest): boolean {
  try {
    new Webhook(secret).verify(request.rawBody.toString("utf8"), headersOf(request));
    return true;
  } catch (error) {
    assert.match(
      String(error),
      /No matching signature/,
      "fails on the signature, not on the headers or the timestamp",
    );
    return false;
  }
}

/** True when some `v1a` entry of the request verifies with the `whpk_` key. */
function verifiesRequestEd25519(publicKey: string, request: ReceivedRequest): boolean {
  const header = (name: string) => String(request.headers[name] ?? "");
  return verifiesEd25519(header("webhook-signature"), publicKey, header("webhook-id"), header("webhook-timestamp"), request.rawBody);
}

function entries(request: ReceivedRequest): string[] {
  return String(request.headers["webhook-signature"] ?? "")
    .split(" ")
    .map((e) => e.split(",")[0]!);
}

test("signing - a target with a secret gets signed requests that the standardwebhooks package verifies", async (t) => {
  const { receiver, service } = await setup(t);
  await createSignedRule(service, receiver);
  await publish(service, 0);
  const [unsigned] = await receiver.waitFor(1, 10_000, "/hook");
  assert.equal(unsigned!.headers["webhook-signature"], undefined, "no secret, no signature");

  const created = await createSecret(service);
  assert.equal(created.kind, "hmac-sha256");
  assert.equal(created.source, "api");
  assert.equal(created.active, true);
  const secret = String(created.secret);
  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.match(String(created.hint), /^whsec_…[0-9a-f]{8}$/);

  await publish(service, 1);
  const [, signed] = await receiver.waitFor(2, 10_000, "/hook");
  assert.deepEqual(entries(signed!), ["v1"]);
  assert.ok(verifiesHmac(secret, signed!));
  assert.match(String(signed!.headers["webhook-id"]), /^[0-9a-f-]{36}$/);
  assert.ok(
    !verifiesHmac(`whsec_${randomBytes(32).toString("base64")}`, signed!),
    "another secret does not verify",
  );
});

test("signing - during a rotation both secrets sign; after the old one is revoked or expires only the new one verifies", async (t) => {
  const { receiver, service } = await setup(t);
  await createSignedRule(service, receiver);
  const first = await createSecret(service);
  const beforeSecond = Date.now();
  const second = await createSecret(service); // default: the others keep signing for 24 h

  await publish(service, 1);
  const [both] = await receiver.waitFor(1, 10_000, "/hook");
  assert.deepEqual(entries(both!), ["v1", "v1"]);
  assert.ok(verifiesHmac(String(first.secret), both!), "the old secret verifies");
  assert.ok(verifiesHmac(String(second.secret), both!), "the new secret verifies");

  const listed = await listSecrets(service);
  assert.deepEqual(
    listed.map((s) => s.id),
    [first.id, second.id],
  );
  const oldEnd = listed[0]!.expiresAtMs as number;
  assert.ok(
    oldEnd >= beforeSecond + 86_400_000 && oldEnd <= Date.now() + 86_400_000,
    `old secret ends in 24 h: ${oldEnd}`,
  );
  assert.equal(listed[1]!.expiresAtMs, undefined);
  assert.ok(listed.every((s) => s.active === true && s.secret === undefined));

  // Revoked: it stops signing at once.
  const revoked = await fetch(`${service.url}${SECRETS}/${String(first.id)}`, { method: "DELETE" });
  assert.equal(revoked.status, 204);
  await publish(service, 2);
  const [, afterRevoke] = await receiver.waitFor(2, 10_000, "/hook");
  assert.deepEqual(entries(afterRevoke!), ["v1"]);
  assert.ok(!verifiesHmac(String(first.secret), afterRevoke!));
  assert.ok(verifiesHmac(String(second.secret), afterRevoke!));

  // A third secret that lets the second sign for one more second only.
  const third = await createSecret(service, { expireOthersAfterSeconds: 1 });
  await publish(service, 3);
  const [, , overlap] = await receiver.waitFor(3, 10_000, "/hook");
  assert.ok(
    verifiesHmac(String(second.secret), overlap!) && verifiesHmac(String(third.secret), overlap!),
    "within the overlap the second and the third secret both sign",
  );
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  await publish(service, 4);
  const [, , , expired] = await receiver.waitFor(4, 10_000, "/hook");
  assert.deepEqual(entries(expired!), ["v1"]);
  assert.ok(!verifiesHmac(String(second.secret), expired!), "the expired secret no longer signs");
  assert.ok(verifiesHmac(String(third.secret), expired!));
  const afterExpiry = await listSecrets(service);
  assert.deepEqual(
    afterExpiry.map((s) => [s.id, s.active]),
    [
      [second.id, false],
      [third.id, true],
    ],
  );

  // expireOthersAfterSeconds 0: a cut-over at once.
  const fourth = await createSecret(service, { expireOthersAfterSeconds: 0 });
  await publish(service, 5);
  const [, , , , cut] = await receiver.waitFor(5, 10_000, "/hook");
  assert.ok(!verifiesHmac(String(third.secret), cut!));
  assert.ok(verifiesHmac(String(fourth.secret), cut!));
  // Secrets that had expired when the fourth was created are gone from the list.
  assert.deepEqual(
    (await listSecrets(service)).map((s) => s.id),
    [third.id, fourth.id],
  );
});

test("signing - ed25519: the answer gives the whpk_ public key, never the private key, and v1a signatures verify with it", async (t) => {
  const { receiver, service } = await setup(t);
  await createSignedRule(service, receiver);
  const created = await createSecret(service, { kind: "ed25519" });
  assert.equal(created.kind, "ed25519");
  assert.equal(created.secret, undefined, "the whsk_ private key never leaves Relaybus");
  assert.doesNotMatch(JSON.stringify(created), PRIVATE_KEY);
  assert.match(String(created.hint), /^whsk_…[0-9a-f]{8}$/);
  const publicKey = String(created.publicKey);
  assert.match(publicKey, /^whpk_[A-Za-z0-9+/]{43}=$/);
  const hmac = await createSecret(service, { kind: "hmac-sha256" });

  await publish(service, 1);
  const [request] = await receiver.waitFor(1, 10_000, "/hook");
  assert.deepEqual(entries(request!), ["v1a", "v1"], "oldest first, one entry per secret");
  assert.ok(verifiesRequestEd25519(publicKey, request!));
  assert.ok(
    verifiesHmac(String(hmac.secret), request!),
    "the HMAC entry still verifies beside the v1a one",
  );
  const tampered = { ...request!, rawBody: Buffer.from(`${request!.body} `) };
  assert.ok(!verifiesRequestEd25519(publicKey, tampered));

  const [listedEd] = await listSecrets(service);
  assert.equal(listedEd!.publicKey, publicKey);
  assert.doesNotMatch(JSON.stringify(listedEd), PRIVATE_KEY);
});

test("signing - a retried attempt carries the same webhook-id, a fresh timestamp and a signature valid for it", async (t) => {
  const { receiver, service } = await setup(t);
  await createSignedRule(service, receiver, { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 5_000 });
  const { secret } = await createSecret(service);
  // Retry-After 2 s: the retry comes in another second, so its timestamp must differ.
  receiver.script("/hook", [{ status: 503, headers: { "retry-after": "2" } }]);
  await publish(service, 1);
  const [first, retry] = await receiver.waitFor(2, 15_000, "/hook");
  assert.equal(retry!.headers["webhook-id"], first!.headers["webhook-id"]);
  assert.ok(
    Number(retry!.headers["webhook-timestamp"]) >= Number(first!.headers["webhook-timestamp"]) + 1,
    "a fresh timestamp",
  );
  assert.notEqual(retry!.headers["webhook-signature"], first!.headers["webhook-signature"]);
  assert.ok(verifiesHmac(String(secret), first!));
  assert.ok(verifiesHmac(String(secret), retry!));
  // The first signature is not valid for the retry's timestamp: it was signed again.
  const replayed = {
    ...retry!,
    headers: { ...retry!.headers, "webhook-signature": first!.headers["webhook-signature"] },
  };
  assert.ok(!verifiesHmac(String(secret), replayed));
});

test("signing - secrets survive a restart: they are in the state file, not only in memory", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-signing-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const receiver = await createReceiver();
  t.after(() => receiver.close());
  let service = await startTestService({ dir });
  await createSignedRule(service, receiver);
  const { secret, id } = await createSecret(service);
  await service.close();

  service = await startTestService({ dir });
  try {
    assert.deepEqual(
      (await listSecrets(service)).map((s) => s.id),
      [id],
    );
    await publish(service, 1);
    const [request] = await receiver.waitFor(1, 10_000, "/hook");
    assert.ok(verifiesHmac(String(secret), request!));
  } finally {
    await service.close();
  }
});

test("signing - rule files: signing.secrets from env: and literals sign; the API shows neither, nor lets them be revoked", async (t) => {
  const fromEnv = `whsec_${randomBytes(32).toString("base64")}`;
  const literal = `whsec_${randomBytes(24).toString("base64")}`;
  const key = "RELAYBUS_TEST_SIGNING_SECRET";
  process.env[key] = fromEnv;
  t.after(() => delete process.env[key]);
  const { receiver, service } = await setup(t, {
    rules: (r) => ({
      "signed.yaml": `bus: default
rules:
  - name: signed
    pattern: {source: [shop.orders]}
    targets:
      - id: hook
        webhook: {url: "${r.url}/hook"}
        retry: {maxAttempts: 1}
        signing:
          secrets: ["env:${key}", "${literal}"]
`,
    }),
  });

  await publish(service, 1);
  const [request] = await receiver.waitFor(1, 10_000, "/hook");
  assert.deepEqual(entries(request!), ["v1", "v1"]);
  assert.ok(verifiesHmac(fromEnv, request!));
  assert.ok(verifiesHmac(literal, request!));

  const rule = await (await service.get("/v1/buses/default/rules/signed")).text();
  assert.ok(!rule.includes(fromEnv.slice(6)) && !rule.includes(literal.slice(6)), rule);
  assert.deepEqual(
    (JSON.parse(rule) as { definition: { targets: Obj[] } }).definition.targets[0]!.signing,
    {
      secrets: [`env:${key}`, "whsec_***"],
    },
  );

  const listed = await listSecrets(service);
  assert.deepEqual(
    listed.map((s) => [s.id, s.source, s.kind, s.active]),
    [
      ["file-1", "file", "hmac-sha256", true],
      ["file-2", "file", "hmac-sha256", true],
    ],
  );
  assert.ok(!JSON.stringify(listed).includes(fromEnv.slice(6)));
  const refused = await fetch(`${service.url}${SECRETS}/file-1`, { method: "DELETE" });
  const refusal = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(refused.status, 409);
  assert.equal(refusal.error.code, "RuleManagedByFile");
  assert.match(refusal.error.message, /signed\.yaml:\d+/);

  // An API secret signs beside the file's.
  const api = await createSecret(service);
  await publish(service, 2);
  const [, both] = await receiver.waitFor(2, 10_000, "/hook");
  assert.deepEqual(entries(both!), ["v1", "v1", "v1"]);
  assert.ok(verifiesHmac(String(api.secret), both!) && verifiesHmac(fromEnv, both!));
});

test("signing - rule files: an unset env: variable or a malformed secret is a problem naming it, never quoting a secret", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-signing-rules-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const notASecret = `sk_live_${randomBytes(16).toString("hex")}`;
  process.env.RELAYBUS_TEST_NOT_A_SECRET = notASecret;
  t.after(() => delete process.env.RELAYBUS_TEST_NOT_A_SECRET);
  const short = `whsec_${randomBytes(16).toString("base64")}`;
  mkdirSync(join(dir, "rules"));
  writeFileSync(
    join(dir, "rules", "orders.yaml"),
    `bus: orders
rules:
  - name: signed
    pattern: {source: [shop.orders]}
    targets:
      - id: hook
        webhook: {url: "https://example.com/hook"}
        signing:
          secrets:
            - env:RELAYBUS_TEST_UNSET_SIGNING_SECRET
            - env:RELAYBUS_TEST_NOT_A_SECRET
            - "${short}"
`,
  );
  const result = await checkRuleFiles(join(dir, "rules"));
  assert.deepEqual(
    result.problems.map((p) => [p.line, p.pointer]),
    [
      [10, "/rules/0/targets/0/signing/secrets/0"],
      [11, "/rules/0/targets/0/signing/secrets/1"],
      [12, "/rules/0/targets/0/signing/secrets/2"],
    ],
  );
  assert.match(
    result.problems[0]!.message,
    /environment variable RELAYBUS_TEST_UNSET_SIGNING_SECRET is not set/,
  );
  assert.match(
    result.problems[1]!.message,
    /environment variable RELAYBUS_TEST_NOT_A_SECRET is not a signing secret/,
  );
  assert.match(
    result.problems[2]!.message,
    /whsec_ secret must be padded base64 of 24 to 64 bytes/,
  );
  const text = JSON.stringify(result.problems);
  assert.ok(!text.includes(notASecret) && !text.includes(short.slice(6)), text);
});

test("signing - secrets stay out of dead letters, dry runs and the server's log", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-signing-log-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const receiver = await createReceiver();
  t.after(() => receiver.close());
  receiver.always("/hook", { status: 400, body: "rejected" });
  const fileSecret = `whsec_${randomBytes(32).toString("base64")}`;
  const key = "RELAYBUS_TEST_LOG_SIGNING_SECRET";
  process.env[key] = fileSecret;
  t.after(() => delete process.env[key]);
  mkdirSync(join(dir, "rules"));
  writeFileSync(
    join(dir, "rules", "signed.yaml"),
    `bus: default
rules:
  - name: signed
    pattern: {source: [shop.orders]}
    targets:
      - id: hook
        webhook: {url: "${receiver.url}/hook"}
        retry: {maxAttempts: 1}
        signing: {secrets: ["env:${key}"]}
`,
  );
  const server = await spawnRelaybus({
    port: await freePort(),
    dataDir: join(dir, "data"),
    rulesDir: join(dir, "rules"),
  });
  t.after(() => server.stop());
  const post = (path: string, body: unknown) =>
    fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  const created = (await (await post(SECRETS, {})).json()) as Obj;
  const apiSecret = String(created.secret);
  assert.match(apiSecret, /^whsec_/);
  const ed = (await (await post(SECRETS, { kind: "ed25519" })).json()) as Obj;
  await post("/v1/events", { Entries: [{ Source: "shop.orders", DetailType: "t", Detail: "{}" }] });
  const [request] = await receiver.waitFor(1, 20_000, "/hook");
  const signature = String(request!.headers["webhook-signature"]);
  assert.deepEqual(entries(request!), ["v1", "v1", "v1a"]);
  assert.ok(verifiesHmac(fileSecret, request!) && verifiesHmac(apiSecret, request!));
  assert.ok(verifiesRequestEd25519(String(ed.publicKey), request!));

  let letters: Obj[] = [];
  for (const deadline = Date.now() + 10_000; letters.length === 0 && Date.now() < deadline;) {
    letters = (
      (await (await fetch(`${server.url}/v1/dead-letters?bus=default`)).json()) as {
        deadLetters: Obj[];
      }
    ).deadLetters;
    if (letters.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(letters.length, 1, "the rejected delivery was dead-lettered");
  const letter = await (
    await fetch(`${server.url}/v1/dead-letters/${String(letters[0]!.id)}`)
  ).text();
  const dryRun = await (await post("/v1/buses/default/rules/signed:dry-run", {})).text();
  assert.match(dryRun, /"outcome":"payload"/);
  const secretsList = await (await fetch(`${server.url}${SECRETS}`)).text();
  await server.stop();
  const log = server.output();
  assert.match(log, /signing secret created/, "the creation is logged (so the log was captured)");

  const signatures = signature.split(" ").map((e) => e.split(",")[1]!);
  for (const [what, text] of Object.entries({ letter, dryRun, secretsList, log })) {
    for (const secret of [fileSecret, apiSecret]) {
      assert.ok(!text.includes(secret.slice("whsec_".length)), `${what} shows a secret`);
    }
    assert.doesNotMatch(text, PRIVATE_KEY, `${what} shows a private key`);
    for (const value of signatures) assert.ok(!text.includes(value), `${what} shows a signature`);
  }
  assert.ok(
    !/webhook-signature/.test(letter),
    "the stored request has no signature: it is made per attempt",
  );
  assert.ok(!/webhook-signature/.test(dryRun));
});

test("signing - the secrets API answers 404 for an unknown bus, rule, target or secret, and checks its body", async (t) => {
  const { receiver, service } = await setup(t);
  await createSignedRule(service, receiver);
  const expectError = async (response: Response, status: number, code: string) => {
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(response.status, status, JSON.stringify(body));
    assert.equal(body.error.code, code, JSON.stringify(body));
    return body.error.message;
  };
  await expectError(
    await service.get("/v1/buses/nope/rules/signed/targets/hook/secrets"),
    404,
    "BusNotFound",
  );
  await expectError(
    await service.post("/v1/buses/default/rules/nope/targets/hook/secrets", {}),
    404,
    "RuleNotFound",
  );
  const noTarget = await expectError(
    await service.get("/v1/buses/default/rules/signed/targets/nope/secrets"),
    404,
    "TargetNotFound",
  );
  assert.match(noTarget, /has no target "nope"/);
  await expectError(
    await fetch(`${service.url}${SECRETS}/nope`, { method: "DELETE" }),
    404,
    "SecretNotFound",
  );
  await expectError(
    await fetch(`${service.url}${SECRETS}/file-1`, { method: "DELETE" }),
    404,
    "SecretNotFound",
  );
  await expectError(
    await fetch(`${service.url}/v1/buses/default/rules/signed/targets/nope/secrets/x`, {
      method: "DELETE",
    }),
    404,
    "TargetNotFound",
  );
  await expectError(await service.post(SECRETS, { kind: "rsa" }), 400, "ValidationError");
  await expectError(
    await service.post(SECRETS, { expireOthersAfterSeconds: -1 }),
    400,
    "ValidationError",
  );
  await expectError(
    await service.post(SECRETS, { expireOthersAfterSeconds: 2_592_001 }),
    400,
    "ValidationError",
  );
  await expectError(await service.post(SECRETS, { secret: "whsec_mine" }), 400, "ValidationError");
  await expectError(
    await fetch(`${service.url}${SECRETS}`, { method: "PUT" }),
    405,
    "MethodNotAllowed",
  );
  assert.deepEqual(await listSecrets(service), [], "nothing was created by the refused calls");

  // An API rule cannot carry signing secrets: they would show in its definition.
  const message = await expectError(
    await service.post("/v1/buses/default/rules", {
      name: "inline",
      pattern: { source: ["x"] },
      targets: [
        { id: "t", webhook: { url: `${receiver.url}/t` }, signing: { secrets: ["env:HOME"] } },
      ],
    }),
    400,
    "InvalidRule",
  );
  assert.match(
    message,
    /\/targets\/0\/signing: signing is for rule files; .*POST \/v1\/buses\/default\/rules\/inline\/targets\/t\/secrets/,
  );
});

test("signing - the secret store: rotation cuts only later ends, reads come from memory until a change", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-secret-store-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storage = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only" });
  t.after(() => storage.close());
  const store = storage.targetSecrets;
  const secret = (
    id: string,
    createdAtMs: number,
    extra: Partial<StoredTargetSecret> = {},
  ): StoredTargetSecret => ({
    bus: "b",
    rule: "r",
    targetId: "t",
    id,
    ...generateSigningSecret("hmac-sha256"),
    createdAtMs,
    ...extra,
  });

  assert.deepEqual(store.activeSecrets("b", "r", "t", 0), []);
  store.addSecret(secret("a", 1_000));
  store.addSecret(secret("soon", 1_001, { expiresAtMs: 5_000 }));
  // A third, with the others cut to 10,000: "a" (no end) is cut, "soon" (ends earlier) keeps 5,000.
  store.addSecret(secret("c", 2_000), { expireOthersAtMs: 10_000 });
  const ends = () => store.listSecrets("b", "r", "t").map((s) => [s.id, s.expiresAtMs]);
  assert.deepEqual(ends(), [
    ["a", 10_000],
    ["soon", 5_000],
    ["c", undefined],
  ]);
  assert.deepEqual(
    store.activeSecrets("b", "r", "t", 4_999).map((s) => s.id),
    ["a", "soon", "c"],
  );
  assert.deepEqual(
    store.activeSecrets("b", "r", "t", 5_000).map((s) => s.id),
    ["a", "c"],
  );
  assert.deepEqual(
    store.activeSecrets("b", "r", "t", 10_000).map((s) => s.id),
    ["c"],
  );
  // Other targets are separate.
  assert.deepEqual(store.activeSecrets("b", "r", "other", 0), []);

  // From memory: the same objects on every read, even with the rows changed behind its back
  // (which only this store does in a running Relaybus).
  const before = store.activeSecrets("b", "r", "t", 0);
  assert.equal(
    store.activeSecrets("b", "r", "t", 0),
    before,
    "the very same list while nothing expired",
  );
  storage.stateDatabase.prepare("DELETE FROM target_secrets WHERE id = 'c'").run();
  assert.equal(store.activeSecrets("b", "r", "t", 0), before);
  // A change through the store reads the target again.
  assert.equal(store.revokeSecret("b", "r", "t", "a"), true);
  assert.deepEqual(
    store.activeSecrets("b", "r", "t", 0).map((s) => s.id),
    ["soon"],
  );
  assert.equal(store.revokeSecret("b", "r", "t", "a"), false);

  // Adding prunes the target's secrets that had expired by then.
  store.addSecret(secret("d", 6_000));
  assert.deepEqual(ends(), [["d", undefined]]);
});

test("signing - a version 1 state file is migrated to the current version and keeps its rows", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-secret-migration-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = new Database(join(dir, STATE_FILE_NAME));
  applyMigrations(db, STATE_MIGRATIONS.slice(0, 1));
  db.prepare("INSERT INTO buses (name, description, created_at_ms) VALUES ('kept', NULL, 1)").run();
  assert.equal(db.pragma("user_version", { simple: true }), 1);
  db.close();

  const storage = openSqliteStorage({ dataDir: dir, durability: "fsync-wal-only" });
  t.after(() => storage.close());
  assert.equal(storage.stateDatabase.pragma("user_version", { simple: true }), STATE_SCHEMA_VERSION);
  assert.deepEqual(
    storage.catalog.listBuses().map((b) => b.name),
    ["kept"],
  );
  const { material } = generateSigningSecret("hmac-sha256");
  storage.targetSecrets.addSecret({
    bus: "kept",
    rule: "r",
    targetId: "t",
    id: "s",
    kind: "hmac-sha256",
    material,
    createdAtMs: 1,
  });
  assert.equal(storage.targetSecrets.activeSecrets("kept", "r", "t", 2)[0]!.material, material);
  assert.throws(
    () =>
      storage.stateDatabase
        .prepare(
          "INSERT INTO target_secrets (bus, rule, target_id, id, kind, material, created_at_ms) VALUES ('b','r','t','x','rsa','m',1)",
        )
        .run(),
    /CHECK constraint failed/,
  );
});

test("signing - deleting a rule (or its bus) deletes its targets' secrets: a rule made again under the same names starts unsigned", async (t) => {
  const { receiver, service } = await setup(t);
  await createSignedRule(service, receiver);
  await createSecret(service);
  assert.equal((await listSecrets(service)).length, 1);
  assert.equal((await fetch(`${service.url}/v1/buses/default/rules/signed`, { method: "DELETE" })).status, 204);
  await createSignedRule(service, receiver);
  assert.deepEqual(await listSecrets(service), []);

  const bus = await service.post("/v1/buses", { name: "team" });
  assert.equal(bus.status, 201, await bus.clone().text());
  const onTeam = "/v1/buses/team/rules/signed/targets/hook/secrets";
  const created = await service.post("/v1/buses/team/rules", {
    name: "signed",
    pattern: { source: ["shop.orders"] },
    targets: [{ id: "hook", webhook: { url: `${receiver.url}/hook` } }],
  });
  assert.equal(created.status, 201, await created.clone().text());
  await createSecret(service, undefined, onTeam);
  assert.equal((await fetch(`${service.url}/v1/buses/team?force=true`, { method: "DELETE" })).status, 204);
  assert.equal((await service.post("/v1/buses", { name: "team" })).status, 201);
  assert.equal(
    (await service.post("/v1/buses/team/rules", { name: "signed", pattern: { source: ["x"] }, targets: [{ id: "hook", webhook: { url: `${receiver.url}/hook` } }] })).status,
    201,
  );
  assert.deepEqual(await listSecrets(service, onTeam), []);
});
