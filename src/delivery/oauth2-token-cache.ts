/**
 * OAuth 2 access tokens of connections, cached between delivery attempts.
 *
 * - A token is used until shortly before it expires: it is refreshed once `expires_in` less
 *   a margin has passed (60 s, or a fifth of its life when that is shorter), in the
 *   background while the current one is still valid, so attempts do not wait for it.
 * - One fetch per connection at a time: concurrent attempts needing a token share it.
 * - A failed fetch is remembered only for a short, growing backoff (1 s doubling to 30 s,
 *   reset by a success), so a failing endpoint is not asked once per attempt, yet a fixed
 *   one is used again within seconds.
 * - An entry belongs to one connection definition object: a changed connection is a new
 *   object (stores and rule files hand out the same object until a change), so its old token
 *   is dropped at its next use. `forget` drops a token the target refused (401).
 *
 * Times are the callers' `nowMs` for decisions and token lifetimes (measured from the start
 * of the fetch, the conservative end), and the injected clock for when a fetch ended.
 *
 * @module
 */
import type { OAuth2Authorization } from "../log/connection-store.js";
import { systemClock, type Clock, type Logger } from "../types.js";
import type { OAuth2Token } from "./oauth2-token-client.js";

/** Lifetime assumed when the endpoint gives no `expires_in`: 5 minutes. */
export const DEFAULT_TOKEN_LIFETIME_MS = 300_000;
/** Refresh this long before expiry at most (less for tokens living under 5 minutes). */
export const TOKEN_REFRESH_MARGIN_MS = 60_000;
/** First wait after a failed fetch; doubles per failure up to {@link MAX_TOKEN_BACKOFF_MS}. */
export const MIN_TOKEN_BACKOFF_MS = 1_000;
export const MAX_TOKEN_BACKOFF_MS = 30_000;

/** Options of {@link createOAuth2TokenCache}. */
export interface OAuth2TokenCacheOptions {
  /** Fetches a token (`OAuth2TokenClient.fetchToken`). */
  fetchToken(oauth2: OAuth2Authorization): Promise<OAuth2Token>;
  logger: Logger;
  /** When a fetch ended, for backoffs. Default the wall clock. */
  clock?: Clock;
}

/** The tokens of every connection using OAuth 2, by connection name. */
export interface OAuth2TokenCache {
  /**
   * The access token of connection `name` for an attempt at `nowMs`: synchronously when a
   * valid one is cached, else a promise of a fetched one. `owner` is the connection's
   * definition object: a different one than last time drops the cached token. Rejects (or
   * throws, within a failure's backoff) with the fetch's Error.
   */
  token(
    name: string,
    owner: object,
    oauth2: OAuth2Authorization,
    nowMs: number,
  ): string | Promise<string>;
  /** Drops connection `name`'s token (the target answered 401); a fetch in flight stays. */
  forget(name: string): void;
  /** Drops everything about connection `name` (it no longer exists). */
  remove(name: string): void;
}

interface CachedToken {
  value: string;
  refreshAtMs: number;
  expiresAtMs: number;
}

interface Entry {
  owner: object;
  token?: CachedToken;
  pending?: Promise<string>;
  /** The last fetch failed: its Error, and until when no other is tried. */
  failure?: { error: Error; untilMs: number };
  /** The backoff after the next failure; 0 after a success. */
  backoffMs: number;
}

/** Creates an empty cache. */
export function createOAuth2TokenCache(options: OAuth2TokenCacheOptions): OAuth2TokenCache {
  const clock = options.clock ?? systemClock;
  const entries = new Map<string, Entry>();

  function fetchFor(
    name: string,
    entry: Entry,
    oauth2: OAuth2Authorization,
    startedAtMs: number,
  ): Promise<string> {
    const pending = options.fetchToken(oauth2).then(
      (token) => {
        if (entries.get(name) === entry) {
          entry.token = cachedToken(token, startedAtMs);
          entry.failure = undefined;
          entry.backoffMs = 0;
        }
        return token.accessToken;
      },
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        if (entries.get(name) === entry) {
          const backoffMs = Math.max(MIN_TOKEN_BACKOFF_MS, entry.backoffMs);
          entry.failure = { error: failure, untilMs: clock.nowMs() + backoffMs };
          entry.backoffMs = Math.min(backoffMs * 2, MAX_TOKEN_BACKOFF_MS);
        }
        throw failure;
      },
    );
    entry.pending = pending;
    const clear = () => {
      if (entry.pending === pending) entry.pending = undefined;
    };
    pending.then(clear, clear);
    return pending;
  }

  return {
    token(name, owner, oauth2, nowMs) {
      let entry = entries.get(name);
      if (entry === undefined || entry.owner !== owner) {
        entry = { owner, backoffMs: 0 };
        entries.set(name, entry);
      }
      const { token } = entry;
      if (token !== undefined && nowMs < token.expiresAtMs) {
        const due = nowMs >= token.refreshAtMs && entry.pending === undefined;
        if (due && (entry.failure === undefined || nowMs >= entry.failure.untilMs)) {
          // Refreshed in the background; this attempt goes with the token still valid.
          fetchFor(name, entry, oauth2, nowMs).catch((error: unknown) => {
            options.logger.warn(
              "oauth2: refreshing a token failed; the current one is used until it expires",
              {
                connection: name,
                error: error instanceof Error ? error.message : String(error),
              },
            );
          });
        }
        return token.value;
      }
      if (entry.pending !== undefined) return entry.pending;
      if (entry.failure !== undefined && nowMs < entry.failure.untilMs) throw entry.failure.error;
      return fetchFor(name, entry, oauth2, nowMs);
    },

    forget(name) {
      const entry = entries.get(name);
      if (entry !== undefined) entry.token = undefined;
    },

    remove(name) {
      entries.delete(name);
    },
  };
}

/** When to refresh and when to stop using a token fetched at `startedAtMs`. */
function cachedToken(token: OAuth2Token, startedAtMs: number): CachedToken {
  const lifetimeMs =
    token.expiresInSeconds === undefined
      ? DEFAULT_TOKEN_LIFETIME_MS
      : Math.round(token.expiresInSeconds * 1000);
  const marginMs = Math.min(TOKEN_REFRESH_MARGIN_MS, Math.floor(lifetimeMs / 5));
  return {
    value: token.accessToken,
    refreshAtMs: startedAtMs + lifetimeMs - marginMs,
    expiresAtMs: startedAtMs + lifetimeMs,
  };
}
