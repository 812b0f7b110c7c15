/**
 * API keys as the HTTP layer uses them: issuing (the secret shown once), listing, revoking,
 * and turning a presented token or AWS access key id into the key's grants.
 *
 * A token is `rb_<id>_<secret>`: the id (16 hex characters) finds the key without a scan, the
 * secret (32 random bytes, base64url) proves it. Only SHA-256 of the secret is stored, and
 * it is compared in constant time. A slow KDF (bcrypt, scrypt, Argon2) protects low-entropy
 * passwords against guessing from a stolen hash; a 256-bit random secret cannot be guessed
 * (2^256 tries), so one fast hash is as safe and keeps the check at a microsecond per request.
 *
 * The AWS pair for SigV4: the access key id is `AKRB` + the id upper-cased (20 characters,
 * AWS's length), so it also finds the key at once; the secret access key (30 random bytes,
 * 40 base64url characters) is stored sealed (src/api/auth-secret-box.ts) and opened once per
 * key into memory.
 *
 * Lookups are memory reads: the store keeps the table in memory and hands out the same
 * frozen object until it changes, and the grants compiled from it are cached by that object.
 * A revoke through the API replaces the object, so the next request sees it: a revoked key
 * stops working at once.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { errorMessage, RelaybusError } from "../errors.js";
import type { ApiKeyStore, StoredApiKey } from "../log/api-key-store.js";
import type { Clock, Logger } from "../types.js";
import { compileGrants, parseScopes, type Grants } from "./auth-scopes.js";
import type { SecretBox } from "./auth-secret-box.js";

/** The prefix of every Relaybus API token. */
export const TOKEN_PREFIX = "rb_";
/** The prefix of every Relaybus AWS access key id. */
export const ACCESS_KEY_ID_PREFIX = "AKRB";
/** `last used` is written at most this often per key, so it costs nothing per request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

const ID_PATTERN = /^[0-9a-f]{16}$/;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const ACCESS_KEY_ID_PATTERN = /^AKRB[0-9A-F]{16}$/;

/** A key as the API shows it: never a secret. */
export interface ApiKeyView {
  id: string;
  name: string;
  scopes: string[];
  /** The AWS access key id for SigV4. */
  accessKeyId: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  lastUsedAt?: string;
  /** Most events per second it may publish (over every bus); absent: no limit of its own. */
  ratePerSecond?: number;
  /** `active`, `expired` or `revoked`. */
  state: "active" | "expired" | "revoked";
}

/** A new key, with its secrets: shown once, never again. */
export interface CreatedApiKey extends ApiKeyView {
  /** The token for `Authorization: Bearer` or `x-api-key`. */
  token: string;
  /** The AWS secret access key for SigV4 (with {@link ApiKeyView.accessKeyId}). */
  secretAccessKey: string;
}

/** Who made a request: the key's id and what it may do. */
export interface Principal {
  keyId: string;
  grants: Grants;
  /** The key's publish rate limit, events per second; absent: none of its own. */
  ratePerSecond?: number;
}

/** The largest `ratePerSecond` a key may be given. */
export const MAX_KEY_RATE_PER_SECOND = 10_000_000;

/** What a new key is made of. */
export interface NewApiKey {
  name: string;
  scopes: readonly string[];
  expiresAtMs?: number;
  /** Most events per second the key may publish, over every bus; absent: no limit of its own. */
  ratePerSecond?: number;
}

export interface ApiKeys {
  /** True when requests must carry a key: any key exists, or `auth.required`. */
  authRequired(): boolean;
  /** True when no key exists at all (the bootstrap may create the first). */
  noKeyExists(): boolean;
  /** Issues a key. Throws `ValidationError` for bad scopes or a past expiry. */
  create(input: NewApiKey): CreatedApiKey;
  list(): ApiKeyView[];
  get(id: string): ApiKeyView | undefined;
  /** Revokes at once; undefined when no such key. */
  revoke(id: string): ApiKeyView | undefined;
  /** The principal of a `rb_...` token; throws `Unauthorized` saying why not. */
  authenticateToken(token: string): Principal;
  /** The principal and SigV4 secret of an access key id; throws `Unauthorized` saying why not. */
  authenticateAccessKey(accessKeyId: string): { principal: Principal; secretAccessKey: string };
}

interface CachedKey {
  /** The store's object this entry was built from: a different one means the key changed. */
  stored: StoredApiKey;
  principal: Principal;
  secretHash: Buffer;
  secretAccessKey?: string;
}

export function createApiKeys(deps: {
  store: ApiKeyStore;
  box: SecretBox;
  required: boolean;
  clock: Clock;
  logger: Logger;
}): ApiKeys {
  const { store, box, clock, logger } = deps;
  const cache = new Map<string, CachedKey>();
  /** When each key's `last used` was last written (or tried), so a failing write is not retried per request. */
  const touchedAtMs = new Map<string, number>();

  const cached = (id: string): CachedKey | undefined => {
    const stored = store.get(id);
    if (stored === undefined) return undefined;
    let entry = cache.get(id);
    if (entry?.stored !== stored) {
      entry = {
        stored,
        principal: Object.freeze({
          keyId: id,
          grants: compileGrants(stored.scopes),
          ...(stored.ratePerSecond === undefined ? {} : { ratePerSecond: stored.ratePerSecond }),
        }),
        secretHash: Buffer.from(stored.secretHash, "hex"),
        ...(entry?.secretAccessKey === undefined ? {} : { secretAccessKey: entry.secretAccessKey }),
      };
      cache.set(id, entry);
    }
    return entry;
  };

  /** Throws `Unauthorized` for a revoked or expired key; records its use once a minute. */
  const assertUsable = (entry: CachedKey, nowMs: number, presented: string): void => {
    const key = entry.stored;
    if (key.revokedAtMs !== undefined) {
      throw unauthorized(`${presented}: API key ${key.id} was revoked at ${new Date(key.revokedAtMs).toISOString()}`);
    }
    if (key.expiresAtMs !== undefined && nowMs >= key.expiresAtMs) {
      throw unauthorized(`${presented}: API key ${key.id} expired at ${new Date(key.expiresAtMs).toISOString()}`);
    }
    const last = touchedAtMs.get(key.id) ?? key.lastUsedAtMs ?? 0;
    if (nowMs - last >= LAST_USED_RESOLUTION_MS) {
      touchedAtMs.set(key.id, nowMs);
      try {
        store.touch(key.id, nowMs);
      } catch (error) {
        logger.warn("could not record an API key's last use", { keyId: key.id, error: String(error) });
      }
    }
  };

  const view = (key: StoredApiKey): ApiKeyView => {
    const nowMs = clock.nowMs();
    const state =
      key.revokedAtMs !== undefined ? "revoked" : key.expiresAtMs !== undefined && nowMs >= key.expiresAtMs ? "expired" : "active";
    return {
      id: key.id,
      name: key.name,
      scopes: [...key.scopes],
      accessKeyId: accessKeyIdOf(key.id),
      createdAt: iso(key.createdAtMs),
      ...(key.expiresAtMs === undefined ? {} : { expiresAt: iso(key.expiresAtMs) }),
      ...(key.revokedAtMs === undefined ? {} : { revokedAt: iso(key.revokedAtMs) }),
      ...(key.lastUsedAtMs === undefined ? {} : { lastUsedAt: iso(key.lastUsedAtMs) }),
      ...(key.ratePerSecond === undefined ? {} : { ratePerSecond: key.ratePerSecond }),
      state,
    };
  };

  return {
    authRequired: () => deps.required || store.count() > 0,
    noKeyExists: () => store.count() === 0,

    create(input) {
      const scopes = parseScopes(input.scopes);
      const nowMs = clock.nowMs();
      if (input.expiresAtMs !== undefined && input.expiresAtMs <= nowMs) {
        throw new RelaybusError("ValidationError", `expiresAt: ${iso(input.expiresAtMs)} is not in the future`, {
          details: { field: "expiresAt" },
        });
      }
      const rate = input.ratePerSecond;
      if (rate !== undefined && !(Number.isFinite(rate) && rate > 0 && rate <= MAX_KEY_RATE_PER_SECOND)) {
        throw new RelaybusError(
          "ValidationError",
          `ratePerSecond: must be a number above 0 and at most ${MAX_KEY_RATE_PER_SECOND}, got ${rate}`,
          { details: { field: "ratePerSecond" } },
        );
      }
      let id = randomBytes(8).toString("hex");
      while (store.get(id) !== undefined) id = randomBytes(8).toString("hex");
      const secret = randomBytes(32).toString("base64url");
      const secretAccessKey = randomBytes(30).toString("base64url");
      const stored: StoredApiKey = {
        id,
        name: input.name,
        scopes,
        secretHash: sha256(secret).toString("hex"),
        awsSecretSealed: box.seal(id, secretAccessKey),
        createdAtMs: nowMs,
        ...(input.expiresAtMs === undefined ? {} : { expiresAtMs: input.expiresAtMs }),
        ...(rate === undefined ? {} : { ratePerSecond: rate }),
      };
      store.insert(stored);
      logger.info("API key created", { keyId: id, name: input.name, scopes });
      return { ...view(stored), token: `${TOKEN_PREFIX}${id}_${secret}`, secretAccessKey };
    },

    list: () => store.list().map(view),
    get(id) {
      const key = store.get(id);
      return key === undefined ? undefined : view(key);
    },
    revoke(id) {
      const key = store.revoke(id, clock.nowMs());
      if (key === undefined) return undefined;
      cache.delete(id);
      logger.info("API key revoked", { keyId: id });
      return view(key);
    },

    authenticateToken(token) {
      const parsed = parseToken(token);
      const entry = cached(parsed.id);
      // Hash even when the id is unknown, so that the answer takes the same time.
      const presented = sha256(parsed.secret);
      if (entry === undefined || !timingSafeEqual(presented, entry.secretHash)) {
        throw unauthorized(`API key ${parsed.id}: unknown key or wrong secret`);
      }
      assertUsable(entry, clock.nowMs(), "API key");
      return entry.principal;
    },

    authenticateAccessKey(accessKeyId) {
      if (!ACCESS_KEY_ID_PATTERN.test(accessKeyId)) {
        throw unauthorized(`access key id ${JSON.stringify(accessKeyId.slice(0, 32))} is not a Relaybus access key (AKRB...)`, "UnrecognizedClientException");
      }
      const id = accessKeyId.slice(ACCESS_KEY_ID_PREFIX.length).toLowerCase();
      const entry = cached(id);
      if (entry === undefined) throw unauthorized(`access key id ${accessKeyId} is not known`, "UnrecognizedClientException");
      try {
        assertUsable(entry, clock.nowMs(), `access key id ${accessKeyId}`);
      } catch (error) {
        throw withAwsType(error, "UnrecognizedClientException");
      }
      try {
        entry.secretAccessKey ??= box.open(id, entry.stored.awsSecretSealed);
      } catch (error) {
        // A key made through another node of a cluster whose keys.secret differs from this one's.
        throw unauthorized(
          `access key id ${accessKeyId}: this server cannot open its secret access key (sealed with another keys.secret; give every node of a cluster the same one): ${errorMessage(error)}`,
          "UnrecognizedClientException",
        );
      }
      return { principal: entry.principal, secretAccessKey: entry.secretAccessKey };
    },
  };
}

/** `AKRB` + the key id upper-cased. */
export function accessKeyIdOf(id: string): string {
  return `${ACCESS_KEY_ID_PREFIX}${id.toUpperCase()}`;
}

/** Splits `rb_<id>_<secret>`; throws `Unauthorized` (without echoing the secret) when malformed. */
function parseToken(token: string): { id: string; secret: string } {
  if (token.startsWith(TOKEN_PREFIX)) {
    const rest = token.slice(TOKEN_PREFIX.length);
    const cut = rest.indexOf("_");
    const id = rest.slice(0, cut);
    const secret = rest.slice(cut + 1);
    if (cut !== -1 && ID_PATTERN.test(id) && SECRET_PATTERN.test(secret)) return { id, secret };
  }
  throw unauthorized("API key: not a Relaybus API key (expected rb_<id>_<secret>, as `relaybus keys create` prints it)");
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * An `Unauthorized` error. `awsErrorType` is the `__type` the AWS protocol route answers
 * with instead of the code (src/api/auth-guard.ts `awsErrorTypeOf`).
 */
export function unauthorized(message: string, awsErrorType?: string): RelaybusError {
  return new RelaybusError("Unauthorized", message, awsErrorType === undefined ? {} : { details: { awsErrorType } });
}

function withAwsType(error: unknown, awsErrorType: string): unknown {
  if (error instanceof RelaybusError && error.code === "Unauthorized" && error.details === undefined) {
    return unauthorized(error.message, awsErrorType);
  }
  return error;
}
