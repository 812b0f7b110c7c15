/**
 * The one place requests are checked against API keys: the control plane's middleware, the
 * data plane's REST ingest routes (`Authorization: Bearer rb_...` or `x-api-key: rb_...`)
 * and its AWS protocol route (SigV4 with a Relaybus access key).
 *
 * When auth is on: any key exists, or `auth.required`. While it is off every request passes,
 * as before keys existed, and the server listens on loopback only (src/api/service.ts).
 *
 * The bootstrap: while no key exists, the key routes answer requests from the machine itself
 * (a loopback peer) without a key, so `relaybus keys create --admin` can make the first key;
 * from anywhere else they answer 401. Once a key exists, they need an `admin` key.
 *
 * Answers: 401 `Unauthorized` for missing, malformed, unknown, expired or revoked credentials
 * and bad signatures; 403 `Forbidden` for a valid key without the scope. Messages name what
 * was missing and never carry a secret. The AWS route answers the same in AWS's shape, with
 * AWS's exception names ({@link awsErrorTypeOf}).
 */
import type { IncomingMessage } from "node:http";
import type { RequestHandler } from "express";
import { RelaybusError } from "../errors.js";
import type { Ingest, PutEventsResult } from "../events/ingest.js";
import type { Clock } from "../types.js";
import { unauthorized, type ApiKeys, type Principal } from "./auth-keys.js";
import { KEYS_PATH_PREFIX, mayCall, mayPublish, routeNeed, scopesFor, type RouteNeed } from "./auth-scopes.js";
import { SigningKeyCache, verifySigV4 } from "./sigv4-verify.js";

export interface AuthGuard {
  /**
   * The principal of a REST request that needs `need`; undefined while auth is off (or for the
   * bootstrap). Throws `Unauthorized` or `Forbidden`.
   */
  authorizeRest(req: IncomingMessage, need: RouteNeed, path: string): Principal | undefined;
  /** The principal of a SigV4-signed request to the AWS route (`body` read already); undefined while auth is off. */
  authorizeSigV4(req: IncomingMessage, body: Buffer): Principal | undefined;
  /** Throws `Forbidden` unless the principal (undefined: auth off) may publish to `bus`. */
  assertMayPublish(principal: Principal | undefined, bus: string): void;
  /** Express middleware for the control plane: checks every request by {@link routeNeed}. */
  middleware(): RequestHandler;
}

export function createAuthGuard(deps: { keys: ApiKeys; clock: Clock }): AuthGuard {
  const { keys, clock } = deps;
  const signingKeys = new SigningKeyCache();

  const authorizeRest = (req: IncomingMessage, need: RouteNeed, path: string): Principal | undefined => {
    if (need === "open") return undefined;
    const isKeysRoute = path === KEYS_PATH_PREFIX || path.startsWith(`${KEYS_PATH_PREFIX}/`);
    const token = presentedToken(req);
    if (!keys.authRequired() || (token === undefined && isKeysRoute && keys.noKeyExists())) {
      if (isKeysRoute && keys.noKeyExists() && !isLoopbackPeer(req)) {
        throw unauthorized(
          "no API key exists yet: the first key can only be created from the server's own machine (relaybus keys create --admin on it)",
        );
      }
      return undefined;
    }
    if (token === undefined) {
      throw unauthorized(
        `${req.method} ${path}: no API key; send Authorization: Bearer rb_... or x-api-key: rb_... (it needs ${scopesFor(need)})`,
      );
    }
    const principal = keys.authenticateToken(token);
    if (!mayCall(principal.grants, need)) {
      throw new RelaybusError(
        "Forbidden",
        `${req.method} ${path}: API key ${principal.keyId} lacks the scope; this route needs ${scopesFor(need)}`,
        { details: { keyId: principal.keyId, needs: scopesFor(need) } },
      );
    }
    return principal;
  };

  return {
    authorizeRest,

    authorizeSigV4(req, body) {
      if (!keys.authRequired()) return undefined;
      const { principal } = verifySigV4(
        { method: req.method ?? "POST", url: req.url ?? "/", headers: req.headers, body },
        clock.nowMs(),
        (accessKeyId) => keys.authenticateAccessKey(accessKeyId),
        signingKeys,
      );
      if (!mayCall(principal.grants, "publish")) {
        throw new RelaybusError("Forbidden", `API key ${principal.keyId} may not publish; it needs ${scopesFor("publish")}`, {
          details: { keyId: principal.keyId },
        });
      }
      return principal;
    },

    assertMayPublish(principal, bus) {
      if (principal !== undefined && !mayPublish(principal.grants, bus)) throw forbiddenPublish(principal, bus);
    },

    middleware() {
      return (req, _res, next) => {
        try {
          const principal = authorizeRest(req, routeNeed(req.method, req.path), req.path);
          if (principal !== undefined) _res.locals.apiKeyId = principal.keyId;
          next();
        } catch (error) {
          next(error);
        }
      };
    },
  };
}

/**
 * An {@link Ingest} per principal that refuses buses the key may not publish to: entry by
 * entry in PutEvents (`Forbidden` in that entry's place, the allowed entries stored, as AWS
 * answers per entry), the whole request for a CloudEvents route. Keys that may publish
 * everywhere (and requests while auth is off) use `unrestricted` as is.
 *
 * `restricted` builds an ingest whose bus check is the given one; ingest calls it once per
 * entry inside its per-entry error handling, which is what turns the `Forbidden` thrown
 * there into that entry's result.
 */
export function ingestForPrincipal(
  unrestricted: Ingest,
  restricted: (busAllowed: (bus: string) => boolean) => Ingest,
): (principal: Principal | undefined) => Ingest {
  const byPrincipal = new WeakMap<Principal, Ingest>();
  return (principal) => {
    if (principal === undefined || principal.grants.publishAll) return unrestricted;
    let ingest = byPrincipal.get(principal);
    if (ingest === undefined) {
      ingest = restricted((bus) => {
        if (mayPublish(principal.grants, bus)) return true;
        throw forbiddenPublish(principal, bus);
      });
      byPrincipal.set(principal, ingest);
    }
    return ingest;
  };
}

/**
 * Throws `Forbidden` when every entry of a PutEvents answer was refused for its bus: nothing
 * was stored, and the request as a whole was one the key may not make (403, as for a
 * CloudEvents request to such a bus). A mix keeps the per-entry answer.
 */
export function assertNotAllForbidden(result: PutEventsResult): void {
  if (result.Entries.length === 0 || result.FailedEntryCount !== result.Entries.length) return;
  const first = result.Entries[0];
  if (!result.Entries.every((entry) => "ErrorCode" in entry && entry.ErrorCode === "Forbidden")) return;
  const message = first !== undefined && "ErrorMessage" in first ? first.ErrorMessage : "the API key may not publish to these buses";
  throw new RelaybusError("Forbidden", `every entry was refused: ${message}`);
}

/** The `__type` the AWS protocol route answers an error with: AWS's exception names for auth errors. */
export function awsErrorTypeOf(error: RelaybusError): string {
  const named = error.details?.awsErrorType;
  if (typeof named === "string") return named;
  if (error.code === "Unauthorized") return "UnrecognizedClientException";
  if (error.code === "Forbidden") return "AccessDeniedException";
  return error.code;
}

function forbiddenPublish(principal: Principal, bus: string): RelaybusError {
  return new RelaybusError(
    "Forbidden",
    `API key ${principal.keyId} may not publish to bus ${JSON.stringify(bus)}; it needs ${scopesFor("publish", bus)}`,
    { details: { keyId: principal.keyId, bus } },
  );
}

/** The `rb_...` token of `Authorization: Bearer` or `x-api-key`; undefined when neither is sent. */
function presentedToken(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization;
  if (authorization !== undefined && authorization !== "") {
    const space = authorization.indexOf(" ");
    const scheme = space === -1 ? authorization : authorization.slice(0, space);
    if (scheme.toLowerCase() === "bearer") return authorization.slice(space + 1).trim();
    throw unauthorized(
      `Authorization: the ${JSON.stringify(scheme.slice(0, 32))} scheme is not accepted here; send Bearer rb_... (SigV4 is for the AWS protocol route, POST /)`,
    );
  }
  const header = req.headers["x-api-key"];
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined || value === "" ? undefined : value.trim();
}

/** True when the peer is this machine: 127.0.0.0/8 or ::1 (also IPv4-mapped). */
export function isLoopbackPeer(req: IncomingMessage): boolean {
  const address = req.socket.remoteAddress ?? "";
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") || address === "::1";
}
