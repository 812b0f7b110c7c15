/**
 * Standard Webhooks signatures (standardwebhooks.com, specification 1.0.0, "Signature scheme").
 *
 * The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, as bytes (UTF-8), exactly
 * the body that is sent. `webhook-signature` is a space-separated list, one entry per active
 * secret, so that receivers keep verifying while a secret is rotated:
 * - symmetric: `v1,<base64 HMAC-SHA256>` with a `whsec_<base64>` secret of 24 to 64 random bytes;
 * - asymmetric: `v1a,<base64 ed25519 signature>` with a `whsk_<base64>` private key; the
 *   receiver verifies with its `whpk_<base64>` public key.
 *
 * Key material is serialised as the spec says (prefix + base64). For ed25519, `whsk_` holds
 * the 32-byte seed (RFC 8032's private key); the 64-byte libsodium form (seed then public
 * key) is read too. `whpk_` holds the raw 32-byte public key.
 *
 * Parsing a secret into a `KeyObject` costs far more than signing with it, so a signer
 * parses each secret object once and keeps the key beside it (see {@link createWebhookSigner}).
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from "node:crypto";
import { RelaybusError } from "../errors.js";
import type { SigningSecret, TargetSecretKind } from "../log/log-engine.js";
import type { Logger } from "../types.js";

/** Prefix of a symmetric (HMAC-SHA256) secret. */
export const SYMMETRIC_SECRET_PREFIX = "whsec_";
/** Prefix of an ed25519 private key. */
export const ASYMMETRIC_SECRET_PREFIX = "whsk_";
/** Prefix of an ed25519 public key. */
export const ASYMMETRIC_PUBLIC_KEY_PREFIX = "whpk_";
/** Random bytes of a secret this module creates: 32 (the spec asks for 24 to 64). */
export const SYMMETRIC_SECRET_BYTES = 32;
/** The spec's bounds on a symmetric secret: 24 to 64 bytes (192 to 512 bits). */
export const MIN_SYMMETRIC_SECRET_BYTES = 24;
export const MAX_SYMMETRIC_SECRET_BYTES = 64;

/** A secret ready to sign with: its signature identifier and its key. */
export interface SigningKey {
  /** `v1` (HMAC-SHA256) or `v1a` (ed25519). */
  readonly version: "v1" | "v1a";
  readonly key: KeyObject;
}

/** A new secret: what the API stores and answers once. */
export interface GeneratedSecret extends SigningSecret {
  /** ed25519 only: `whpk_<base64>`. */
  publicKey?: string;
}

/** DER header of a PKCS#8 ed25519 private key; the 32-byte seed follows it (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Creates a secret of `kind` from the system's random source. */
export function generateSigningSecret(kind: TargetSecretKind): GeneratedSecret {
  if (kind === "hmac-sha256") {
    return {
      kind,
      material: `${SYMMETRIC_SECRET_PREFIX}${randomBytes(SYMMETRIC_SECRET_BYTES).toString("base64")}`,
    };
  }
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const seed = privateKey
    .export({ format: "der", type: "pkcs8" })
    .subarray(ED25519_PKCS8_PREFIX.length);
  return {
    kind,
    material: `${ASYMMETRIC_SECRET_PREFIX}${seed.toString("base64")}`,
    publicKey: serialisePublicKey(publicKey),
  };
}

/**
 * Parses a secret's material into a key. Throws `ValidationError` when it is not a
 * `whsec_` secret of 24 to 64 bytes or a `whsk_` ed25519 key; the message never holds the
 * material itself (it ends up in logs and error answers).
 */
export function parseSigningSecret(material: string): SigningKey & { kind: TargetSecretKind } {
  if (material.startsWith(SYMMETRIC_SECRET_PREFIX)) {
    const bytes = decodeBase64(material.slice(SYMMETRIC_SECRET_PREFIX.length));
    if (
      bytes === undefined ||
      bytes.length < MIN_SYMMETRIC_SECRET_BYTES ||
      bytes.length > MAX_SYMMETRIC_SECRET_BYTES
    ) {
      throw new RelaybusError(
        "ValidationError",
        `a ${SYMMETRIC_SECRET_PREFIX} secret must be base64 of ${MIN_SYMMETRIC_SECRET_BYTES} to ${MAX_SYMMETRIC_SECRET_BYTES} bytes`,
      );
    }
    return { kind: "hmac-sha256", version: "v1", key: createSecretKey(bytes) };
  }
  if (material.startsWith(ASYMMETRIC_SECRET_PREFIX)) {
    const bytes = decodeBase64(material.slice(ASYMMETRIC_SECRET_PREFIX.length));
    if (bytes === undefined || (bytes.length !== 32 && bytes.length !== 64)) {
      throw new RelaybusError(
        "ValidationError",
        `a ${ASYMMETRIC_SECRET_PREFIX} key must be base64 of a 32-byte ed25519 seed (or the 64-byte seed and public key)`,
      );
    }
    const key = createPrivateKey({
      key: Buffer.concat([ED25519_PKCS8_PREFIX, bytes.subarray(0, 32)]),
      format: "der",
      type: "pkcs8",
    });
    if (bytes.length === 64 && !rawPublicKey(createPublicKey(key)).equals(bytes.subarray(32))) {
      throw new RelaybusError(
        "ValidationError",
        `a 64-byte ${ASYMMETRIC_SECRET_PREFIX} key must end with the public key of its seed`,
      );
    }
    return { kind: "ed25519", version: "v1a", key };
  }
  throw new RelaybusError(
    "ValidationError",
    `a signing secret starts with ${SYMMETRIC_SECRET_PREFIX} (HMAC-SHA256) or ${ASYMMETRIC_SECRET_PREFIX} (ed25519)`,
  );
}

/** The `whpk_` public key of a `whsk_` private key. Throws `ValidationError` like {@link parseSigningSecret}. */
export function publicKeyOf(material: string): string {
  const parsed = parseSigningSecret(material);
  if (parsed.kind !== "ed25519") {
    throw new RelaybusError(
      "ValidationError",
      `only ${ASYMMETRIC_SECRET_PREFIX} keys have a public key`,
    );
  }
  return serialisePublicKey(createPublicKey(parsed.key));
}

/**
 * A short, safe reminder of which secret this is, for lists: the prefix and the first 8 hex
 * digits of the SHA-256 of the material (`whsec_…3f9a2c1d`). A digest rather than some of the
 * secret's own characters, so that a hint gives away nothing of the key; a receiver that
 * holds the secret can compute it (`printf %s "$SECRET" | sha256sum | cut -c1-8`).
 */
export function secretHint(material: string): string {
  const prefix = material.startsWith(ASYMMETRIC_SECRET_PREFIX)
    ? ASYMMETRIC_SECRET_PREFIX
    : SYMMETRIC_SECRET_PREFIX;
  return `${prefix}…${createHash("sha256").update(material, "utf8").digest("hex").slice(0, 8)}`;
}

/**
 * The `webhook-signature` value for one request: one entry per key, space-separated, each
 * over `{webhookId}.{timestamp}.{body}` with `body` as the UTF-8 bytes that are sent.
 */
export function signatureHeader(
  keys: readonly SigningKey[],
  webhookId: string,
  timestamp: string,
  body: string,
): string {
  const prefix = `${webhookId}.${timestamp}.`;
  // HMAC takes the content in parts, so the body is not copied into a joined string; ed25519
  // signs in one shot and gets the joined bytes, built at most once for all its keys.
  let content: Buffer | undefined;
  let header = "";
  for (const { version, key } of keys) {
    let signature: string;
    if (version === "v1") {
      signature = createHmac("sha256", key)
        .update(prefix, "utf8")
        .update(body, "utf8")
        .digest("base64");
    } else {
      content ??= Buffer.from(prefix + body, "utf8");
      signature = sign(null, content, key).toString("base64");
    }
    header += header === "" ? `${version},${signature}` : ` ${version},${signature}`;
  }
  return header;
}

/** Where a delivery is going, as the signer looks up its secrets. */
export interface SignedTarget {
  bus: string;
  rule: string;
  targetId: string;
}

/** Signs each attempt of a delivery with its target's active secrets. */
export interface WebhookSigner {
  /**
   * The `webhook-signature` value for a request to `target` at `nowMs`, or undefined when the
   * target has no active secret (the request then goes unsigned).
   */
  signature(
    target: SignedTarget,
    webhookId: string,
    timestamp: string,
    body: string,
    nowMs: number,
  ): string | undefined;
}

/** Options of {@link createWebhookSigner}. */
export interface WebhookSignerOptions {
  /**
   * The target's secrets in force at `nowMs`. Asked on every attempt, so it must be cheap;
   * returning the same secret objects while nothing changed lets the signer reuse their keys.
   */
  secretsFor(bus: string, rule: string, targetId: string, nowMs: number): readonly SigningSecret[];
  logger: Logger;
}

/**
 * Creates a signer. Each secret object is parsed once: its key is kept in a `WeakMap` beside
 * the object, so a revoked or replaced secret's key goes with it. A secret that does not parse
 * (a hand-edited state file) is left out of the header and logged once, without its material;
 * the other secrets still sign.
 */
export function createWebhookSigner(options: WebhookSignerOptions): WebhookSigner {
  const { secretsFor, logger } = options;
  const keys = new WeakMap<SigningSecret, SigningKey | null>();

  function keyOf(secret: SigningSecret, target: SignedTarget): SigningKey | null {
    let key = keys.get(secret);
    if (key === undefined) {
      try {
        key = parseSigningSecret(secret.material);
      } catch (error) {
        key = null;
        logger.error("signing: a secret of the target does not parse and is not used", {
          bus: target.bus,
          rule: target.rule,
          targetId: target.targetId,
          kind: secret.kind,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      keys.set(secret, key);
    }
    return key;
  }

  return {
    signature(target, webhookId, timestamp, body, nowMs) {
      const secrets = secretsFor(target.bus, target.rule, target.targetId, nowMs);
      if (secrets.length === 0) return undefined;
      const usable: SigningKey[] = [];
      for (const secret of secrets) {
        const key = keyOf(secret, target);
        if (key !== null) usable.push(key);
      }
      return usable.length === 0 ? undefined : signatureHeader(usable, webhookId, timestamp, body);
    },
  };
}

function serialisePublicKey(key: KeyObject): string {
  return `${ASYMMETRIC_PUBLIC_KEY_PREFIX}${rawPublicKey(key).toString("base64")}`;
}

/** The raw 32 bytes of an ed25519 public key (its JWK `x`). */
function rawPublicKey(key: KeyObject): Buffer {
  const { x } = key.export({ format: "jwk" });
  return Buffer.from(x ?? "", "base64url");
}

/** Strict base64 (standard alphabet, padded), or undefined. */
function decodeBase64(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  return Buffer.from(text, "base64");
}
