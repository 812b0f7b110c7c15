/**
 * Writes the audit log (src/log/audit-store.ts): each mutating control-plane route calls
 * {@link AuditLog.record} once, right after its change succeeded; the rule registry reports
 * reloads of the rule files through {@link AuditLog.recordRuleFiles}. Reads never call it.
 *
 * Who: the API key the auth guard accepted (`res.locals.apiKeyId`, src/api/auth-guard.ts),
 * with its name; without a key, `local` for a request from this machine and `anonymous`
 * otherwise; `rule-files` for reloads.
 *
 * Secrets: `before` and `after` pass through {@link redactForAudit} here, whatever the route
 * gave, so a secret can reach the log only by a field name this file does not know; routes
 * give the same redacted views their answers show (connections through `redactConnection`).
 *
 * Why the entry is written right after the change rather than in its transaction: a change
 * is often several writes (a bus deleted with its rules, secrets and target states; a replay
 * started; a file reload touches no table at all), and the registry updates its memory right
 * after the catalog commits, so rolling the catalog back for a failed audit insert would
 * leave memory and file apart. Every state-file write is synchronous on the main thread, and
 * routes call `record` in the same synchronous stretch as their last write, so no other
 * request runs between a change and its entry; only a process killed in those microseconds
 * (between two statements) loses an entry, never the change itself. A failed audit write is
 * logged as an error and does not fail the request, whose change has already happened.
 */
import { randomUUID } from "node:crypto";
import type { Request } from "express";
import type { AuditAction, AuditActor, AuditEntry, AuditStore } from "../log/audit-store.js";
import type { RuleFilesReload } from "../rules/rule-registry.js";
import type { Clock, Logger } from "../types.js";
import { isLoopbackPeer } from "./auth-guard.js";
import { redactSecrets } from "./redact-secrets.js";

/** Largest `before` or `after` kept, as JSON text; a larger one is kept as its size only. */
export const MAX_AUDIT_VALUE_BYTES = 65_536;

/**
 * Field names whose string values are secrets wherever they appear: an API key's token and
 * SigV4 secret, a signing secret's material, a connection's password or client secret.
 */
const SECRET_FIELDS = new Set([
  "token",
  "secret",
  "secretAccessKey",
  "secretHash",
  "awsSecretSealed",
  "material",
  "password",
  "clientSecret",
]);

/** An `x-request-id` worth keeping as the entry's request id; anything else gets a fresh UUID. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** One change, as a route reports it. */
export interface AuditChange {
  action: AuditAction;
  /** `buses/orders/rules/ship`, `connections/partner`, ... */
  resource: string;
  /** The resource before (as the API shows it); omit for a creation. */
  before?: unknown;
  /** The resource after, or what the change did; omit for a deletion. */
  after?: unknown;
}

export interface AuditLog {
  /** Records a change `req` made, after it succeeded. Never throws. */
  record(req: Request, change: AuditChange): void;
  /** Records a reload of the rule files that changed something, or was refused. Never throws. */
  recordRuleFiles(reload: RuleFilesReload): void;
}

export function createAuditLog(deps: {
  store: AuditStore;
  /** The name of API key `id`, if it exists. */
  keyName: (id: string) => string | undefined;
  clock: Clock;
  logger: Logger;
}): AuditLog {
  const { store, clock, logger } = deps;

  const append = (entry: Omit<AuditEntry, "id" | "atMs">): void => {
    try {
      store.append({ ...entry, atMs: clock.nowMs() });
    } catch (error) {
      logger.error("audit entry could not be written; the change itself was made", {
        action: entry.action,
        resource: entry.resource,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  };

  return {
    record(req, change) {
      append({
        actor: actorOf(req, deps.keyName),
        action: change.action,
        resource: change.resource,
        before: redactForAudit(change.before),
        after: redactForAudit(change.after),
        requestId: requestIdOf(req),
        outcome: "succeeded",
      });
    },

    recordRuleFiles(reload) {
      if (reload.outcome === "succeeded" && !reload.changed) return;
      append({
        actor: { kind: "rule-files" },
        action: "rules.reload",
        resource: "rule-files",
        before: null,
        after:
          reload.outcome === "succeeded"
            ? redactForAudit({
                ...reload.summary,
                buses: reload.buses,
                connections: reload.connections,
              })
            : redactForAudit({ problems: reload.problems }),
        outcome: reload.outcome,
      });
    },
  };
}

/** Who made the request: its API key, or `local` / `anonymous` without one. */
function actorOf(req: Request, keyName: (id: string) => string | undefined): AuditActor {
  const keyId: unknown = req.res?.locals.apiKeyId;
  if (typeof keyId === "string") {
    const name = keyName(keyId);
    return { kind: "api-key", id: keyId, ...(name === undefined ? {} : { name }) };
  }
  return isLoopbackPeer(req) ? { kind: "local" } : { kind: "anonymous" };
}

/** The request's `x-request-id` when it is a plain token, else one made up (the same for the whole request). */
function requestIdOf(req: Request): string {
  const locals = req.res?.locals as { auditRequestId?: string } | undefined;
  if (locals?.auditRequestId !== undefined) return locals.auditRequestId;
  const header = req.headers["x-request-id"];
  const id = typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
  if (locals !== undefined) locals.auditRequestId = id;
  return id;
}

/**
 * `value` as the audit log keeps it: credential-like headers and signing secrets redacted
 * (redact-secrets.ts), every string under a {@link SECRET_FIELDS} name replaced by "***",
 * `undefined` as null, and a value over {@link MAX_AUDIT_VALUE_BYTES} as its size only.
 */
export function redactForAudit(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  const redacted = stripSecretFields(redactSecrets(value));
  const bytes = Buffer.byteLength(JSON.stringify(redacted) ?? "null");
  return bytes > MAX_AUDIT_VALUE_BYTES
    ? { omitted: "too large for the audit log", bytes }
    : redacted;
}

function stripSecretFields(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripSecretFields);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] =
      SECRET_FIELDS.has(key) && typeof inner === "string" ? "***" : stripSecretFields(inner);
  }
  return out;
}
