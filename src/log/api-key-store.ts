/**
 * API keys: who may call Relaybus, and for what (issue 8). A key has an id, a name, scopes,
 * and may expire or be revoked. Its secret is never stored: only its SHA-256 hash. Its AWS
 * secret access key (for SigV4 on the AWS protocol route) must be stored, because the server
 * recomputes the signature with it; it is stored sealed (encrypted), and only the API layer
 * holds the key that opens it (src/api/auth-secret-box.ts).
 *
 * Keys are never deleted, only revoked: a revoked key's row says who it was and when it
 * stopped, and its id is never reused.
 */

/** One API key as stored. */
export interface StoredApiKey {
  /** 16 lowercase hex characters; the `<id>` of `rb_<id>_<secret>`. */
  id: string;
  /** What the key is for, for people: 1 to 128 characters. */
  name: string;
  /** Its scopes, as given (`publish:orders`, `publish:shop-*`, `read`, `manage`, `admin`). */
  scopes: readonly string[];
  /** SHA-256 of the secret part of the token, lowercase hex. */
  secretHash: string;
  /** The AWS secret access key, sealed (AES-256-GCM, see src/api/auth-secret-box.ts). */
  awsSecretSealed: string;
  createdAtMs: number;
  /** From this instant on the key no longer works; absent: never expires. */
  expiresAtMs?: number;
  /** When it was revoked; absent while it is not. */
  revokedAtMs?: number;
  /** The last request it authenticated, to the minute (see {@link ApiKeyStore.touch}). */
  lastUsedAtMs?: number;
  /**
   * Most events per second it may publish, over every bus (a token bucket with a burst of one
   * second's worth); absent: no limit of its own.
   */
  ratePerSecond?: number;
}

/**
 * The stored keys. Every request of an authenticated server looks its key up, so reads come
 * from memory after the first; writes update that copy after their commit.
 */
export interface ApiKeyStore {
  /** Every key, revoked ones too, oldest first. */
  list(): StoredApiKey[];
  /** A memory lookup after the first read. */
  get(id: string): StoredApiKey | undefined;
  /** How many keys exist, revoked and expired ones included. */
  count(): number;
  /** Stores a new key. Throws `ServiceUnavailable` if the write fails. */
  insert(key: StoredApiKey): void;
  /** Marks the key revoked at `atMs` (a second revoke keeps the first time); undefined when no such key. */
  revoke(id: string, atMs: number): StoredApiKey | undefined;
  /** Records that the key was used at `atMs`. The caller limits how often (once a minute per key). */
  touch(id: string, atMs: number): void;
}
