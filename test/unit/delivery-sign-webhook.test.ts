/**
 * Standard Webhooks signing. Symmetric signatures are checked with the `standardwebhooks`
 * package (the reference implementation receivers use, not our code); ed25519 ones with
 * node:crypto's `verify` and the `whpk_` public key, since that package verifies `v1` only.
 */
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, verify } from "node:crypto";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import {
  createWebhookSigner,
  generateSigningSecret,
  parseSigningSecret,
  publicKeyOf,
  secretHint,
  signatureHeader,
} from "../../src/delivery/sign-webhook.js";
import type { SigningSecret } from "../../src/log/log-engine.js";
import type { Logger } from "../../src/types.js";
import { verifiesEd25519 } from "../helpers/verify-ed25519.js";

const ID = "0190a6c1-7d2e-7f3a-9b4c-5d6e7f809a1b";
const BODY =
  '{"specversion":"1.0","id":"e-1","source":"shop","type":"order.created","data":{"total":250,"note":"café ☕"}}';

function now(): string {
  return String(Math.floor(Date.now() / 1000));
}


interface LogLine {
  level: string;
  message: string;
  fields: unknown;
}

/** A real Logger that keeps what it is given. */
function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  return { lines, info: log("info"), warn: log("warn"), error: log("error") };
}

test("signing - a generated whsec_ secret is 32 random bytes and its v1 signature verifies with the standardwebhooks package", () => {
  const secret = generateSigningSecret("hmac-sha256");
  assert.match(secret.material, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(secret.material.slice(6), "base64").length, 32);
  assert.notEqual(generateSigningSecret("hmac-sha256").material, secret.material);
  const timestamp = now();
  const header = signatureHeader([parseSigningSecret(secret.material)], ID, timestamp, BODY);
  assert.match(header, /^v1,[A-Za-z0-9+/]{43}=$/);
  const payload = new Webhook(secret.material).verify(BODY, {
    "webhook-id": ID,
    "webhook-timestamp": timestamp,
    "webhook-signature": header,
  });
  assert.deepEqual(payload, JSON.parse(BODY));
});

test("signing - the signature covers the id, the timestamp and every byte of the body", () => {
  const secret = generateSigningSecret("hmac-sha256").material;
  const key = parseSigningSecret(secret);
  const timestamp = now();
  const header = signatureHeader([key], ID, timestamp, BODY);
  const hook = new Webhook(secret);
  const headers = { "webhook-id": ID, "webhook-timestamp": timestamp, "webhook-signature": header };
  assert.throws(() => hook.verify(BODY.replace("250", "251"), headers), /No matching signature/);
  assert.throws(
    () => hook.verify(BODY, { ...headers, "webhook-id": `${ID}x` }),
    /No matching signature/,
  );
  assert.throws(
    () => hook.verify(BODY, { ...headers, "webhook-timestamp": String(Number(timestamp) - 1) }),
    /No matching signature/,
  );
  assert.notEqual(signatureHeader([key], ID, String(Number(timestamp) + 1), BODY), header);
  assert.throws(
    () => new Webhook(generateSigningSecret("hmac-sha256").material).verify(BODY, headers),
    /No matching signature/,
  );
});

test("signing - several secrets give one entry each, space-separated, and each verifies alone", () => {
  const [a, b] = [
    generateSigningSecret("hmac-sha256").material,
    generateSigningSecret("hmac-sha256").material,
  ];
  const pair = generateSigningSecret("ed25519");
  const timestamp = now();
  const header = signatureHeader(
    [a, b, pair.material].map(parseSigningSecret),
    ID,
    timestamp,
    BODY,
  );
  const entries = header.split(" ");
  assert.deepEqual(
    entries.map((e) => e.split(",")[0]),
    ["v1", "v1", "v1a"],
  );
  for (const secret of [a, b]) {
    new Webhook(secret).verify(BODY, {
      "webhook-id": ID,
      "webhook-timestamp": timestamp,
      "webhook-signature": header,
    });
  }
  assert.ok(verifiesEd25519(header, pair.publicKey!, ID, timestamp, BODY));
});

test("signing - ed25519: whsk_ holds the 32-byte seed, whpk_ the raw public key, v1a the 64-byte signature", () => {
  const pair = generateSigningSecret("ed25519");
  assert.equal(pair.kind, "ed25519");
  assert.match(pair.material, /^whsk_[A-Za-z0-9+/]{43}=$/);
  assert.match(pair.publicKey!, /^whpk_[A-Za-z0-9+/]{43}=$/);
  assert.equal(publicKeyOf(pair.material), pair.publicKey);
  const timestamp = now();
  const header = signatureHeader([parseSigningSecret(pair.material)], ID, timestamp, BODY);
  assert.match(header, /^v1a,[A-Za-z0-9+/]{86}==$/);
  assert.ok(verifiesEd25519(header, pair.publicKey!, ID, timestamp, BODY));
  assert.ok(!verifiesEd25519(header, pair.publicKey!, ID, timestamp, `${BODY} `));
  assert.ok(
    !verifiesEd25519(header, generateSigningSecret("ed25519").publicKey!, ID, timestamp, BODY),
  );
});

test("signing - a 64-byte whsk_ (libsodium's seed and public key) is read; one whose halves disagree is refused", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = Buffer.from(jwk.d!, "base64url");
  const pub = Buffer.from(jwk.x!, "base64url");
  const libsodium = `whsk_${Buffer.concat([seed, pub]).toString("base64")}`;
  assert.equal(publicKeyOf(libsodium), `whpk_${pub.toString("base64")}`);
  const timestamp = now();
  const header = signatureHeader([parseSigningSecret(libsodium)], ID, timestamp, BODY);
  assert.ok(
    verify(
      null,
      Buffer.from(`${ID}.${timestamp}.${BODY}`),
      publicKey,
      Buffer.from(header.slice(4), "base64"),
    ),
  );
  const other = Buffer.from(generateSigningSecret("ed25519").publicKey!.slice(5), "base64");
  assert.throws(
    () => parseSigningSecret(`whsk_${Buffer.concat([seed, other]).toString("base64")}`),
    {
      code: "ValidationError",
      message: /must end with the public key of its seed/,
    },
  );
});

test("signing - malformed secrets are refused with messages that never quote them", () => {
  const cases = [
    "whsec_" + Buffer.alloc(23, 7).toString("base64"), // too short
    "whsec_" + Buffer.alloc(65, 7).toString("base64"), // too long
    "whsec_not*base64!",
    "whsec_",
    "whsk_" + Buffer.alloc(31, 1).toString("base64"),
    "sk_live_" + Buffer.alloc(32, 1).toString("base64"),
    "",
  ];
  for (const material of cases) {
    const encoded = material.slice(material.indexOf("_") + 1);
    assert.throws(
      () => parseSigningSecret(material),
      (error: Error & { code?: string }) =>
        error.code === "ValidationError" &&
        (encoded.length < 4 || !error.message.includes(encoded)),
      material,
    );
  }
  // The bounds themselves are accepted.
  parseSigningSecret("whsec_" + Buffer.alloc(24, 9).toString("base64"));
  parseSigningSecret("whsec_" + Buffer.alloc(64, 9).toString("base64"));
});

test("signing - a hint tells secrets apart and gives nothing of them away", () => {
  const secret = generateSigningSecret("hmac-sha256").material;
  const hint = secretHint(secret);
  assert.match(hint, /^whsec_…[0-9a-f]{8}$/);
  assert.equal(secretHint(secret), hint);
  assert.notEqual(secretHint(generateSigningSecret("hmac-sha256").material), hint);
  // What the README tells receivers to compute to match a hint to the secret they hold.
  assert.equal(hint.slice(-8), createHash("sha256").update(secret).digest("hex").slice(0, 8));
  assert.match(secretHint(generateSigningSecret("ed25519").material), /^whsk_…[0-9a-f]{8}$/);
});

test("signing - the signer asks for the target's secrets at the attempt's time and signs with those in force", () => {
  const first: SigningSecret = Object.freeze({
    kind: "hmac-sha256",
    material: generateSigningSecret("hmac-sha256").material,
  });
  const second: SigningSecret = Object.freeze({
    kind: "hmac-sha256",
    material: generateSigningSecret("hmac-sha256").material,
  });
  const asked: unknown[][] = [];
  let inForce: readonly SigningSecret[] = [first, second];
  const signer = createWebhookSigner({
    secretsFor: (...args) => {
      asked.push(args);
      return args[2] === "unsigned" ? [] : inForce;
    },
    logger: recordingLogger(),
  });
  const target = { bus: "orders", rule: "big", targetId: "fulfil" };
  const timestamp = now();
  const header = signer.signature(target, ID, timestamp, BODY, 1_700_000_000_000);
  assert.deepEqual(asked, [["orders", "big", "fulfil", 1_700_000_000_000]]);
  const headers = {
    "webhook-id": ID,
    "webhook-timestamp": timestamp,
    "webhook-signature": header!,
  };
  new Webhook(first.material).verify(BODY, headers);
  new Webhook(second.material).verify(BODY, headers);

  inForce = [second];
  const later = {
    ...headers,
    "webhook-signature": signer.signature(target, ID, timestamp, BODY, 1_700_000_100_000)!,
  };
  assert.throws(() => new Webhook(first.material).verify(BODY, later), /No matching signature/);
  new Webhook(second.material).verify(BODY, later);

  assert.equal(
    signer.signature({ ...target, targetId: "unsigned" }, ID, timestamp, BODY, 0),
    undefined,
  );
});

test("signing - a secret that does not parse is left out and logged once, without its material; the others still sign", () => {
  const good: SigningSecret = {
    kind: "hmac-sha256",
    material: generateSigningSecret("hmac-sha256").material,
  };
  const broken: SigningSecret = { kind: "hmac-sha256", material: "whsec_c2hvcnQ=" };
  const logger = recordingLogger();
  const signer = createWebhookSigner({ secretsFor: () => [broken, good], logger });
  const target = { bus: "b", rule: "r", targetId: "t" };
  const timestamp = now();
  for (let i = 0; i < 3; i++) {
    const header = signer.signature(target, ID, timestamp, BODY, 0)!;
    assert.equal(header.split(" ").length, 1);
    new Webhook(good.material).verify(BODY, {
      "webhook-id": ID,
      "webhook-timestamp": timestamp,
      "webhook-signature": header,
    });
  }
  const errors = logger.lines.filter((l) => l.level === "error");
  assert.equal(errors.length, 1, "logged once per secret object, not per attempt");
  assert.ok(!JSON.stringify(errors).includes("c2hvcnQ"), JSON.stringify(errors));
  assert.equal(
    createWebhookSigner({ secretsFor: () => [broken], logger }).signature(
      target,
      ID,
      timestamp,
      BODY,
      0,
    ),
    undefined,
  );
});
