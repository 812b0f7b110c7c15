/**
 * The audit log (issue 8): one entry per change to the configuration — buses, rules, targets,
 * signing secrets, connections, archives, replays, API keys, billing periods, dead letters and
 * reloads of the rule files — saying who made it, when, to what, and what it was before and
 * after. Reads are never recorded.
 *
 * Entries are append-only: nothing updates them; retention (`audit.retentionDays`) deletes
 * the oldest. `before` and `after` arrive here with their secrets already redacted
 * (src/api/audit-log.ts): the store keeps what it is given.
 */

/** Every action the audit log records, as `<resource kind>.<verb>`. */
export const AUDIT_ACTIONS = [
  "bus.create",
  "bus.delete",
  "rule.create",
  "rule.replace",
  "rule.delete",
  "rule.enable",
  "rule.disable",
  "rules.reload",
  "target.enable",
  "target.disable",
  "target.secret.create",
  "target.secret.revoke",
  "connection.put",
  "connection.delete",
  "archive.create",
  "archive.delete",
  "replay.start",
  "replay.cancel",
  "key.create",
  "key.revoke",
  "billing.period.close",
  "dead-letters.redrive",
  "dead-letters.purge",
  "stream.create",
  "stream.replace",
  "stream.delete",
  "stream.pause",
  "stream.resume",
  "stream.dead-letters.redrive",
  "stream.dead-letters.purge",
] as const;

/** One action of {@link AUDIT_ACTIONS}. */
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/**
 * Who made a change:
 * - `api-key`: a request with an API key (its id, and its name at the time);
 * - `local`: a request without a key from this machine (auth off, or the key bootstrap);
 * - `anonymous`: a request without a key from elsewhere (auth off with `auth.allowUnauthenticated`);
 * - `rule-files`: a reload of the rule files (by the API, SIGHUP or the file watcher).
 */
export type AuditActor =
  | { kind: "api-key"; id: string; name?: string }
  | { kind: "local" }
  | { kind: "anonymous" }
  | { kind: "rule-files" };

/**
 * How the change ended: `succeeded`; or `refused` (a reload of the rule files that found
 * problems: nothing changed, the entry names them).
 */
export type AuditOutcome = "succeeded" | "refused";

/** A JSON value as stored: `null` when there was nothing (no `before` of a creation). */
export type AuditValue = unknown;

/** An entry to append. */
export interface NewAuditEntry {
  /** When the change was made, ms since the epoch. */
  atMs: number;
  actor: AuditActor;
  action: AuditAction;
  /** What changed, as a path: `buses/orders/rules/ship`, `connections/partner`, `keys/3f9c...`. */
  resource: string;
  /** The resource before the change, secrets redacted; null for a creation. */
  before: AuditValue;
  /** The resource after the change (or what the change did), secrets redacted; null for a deletion. */
  after: AuditValue;
  /** The id of the HTTP request that made the change (its `x-request-id`, or one made up); absent for reloads of the rule files. */
  requestId?: string;
  outcome: AuditOutcome;
}

/** An entry as stored: with its id, which grows with every entry and is never reused. */
export interface AuditEntry extends NewAuditEntry {
  id: number;
}

/** What {@link AuditStore.list} selects; every field narrows. */
export interface AuditQuery {
  /** At or after, ms since the epoch. */
  fromMs?: number;
  /** Before, ms since the epoch (exclusive). */
  toMs?: number;
  /** An actor kind (`local`, `anonymous`, `rule-files`), or an API key's id or name. */
  actor?: string;
  /** One action, or a family ending in `.*` (`rule.*`). */
  action?: string;
  /** A resource and everything under it: `buses/orders` selects `buses/orders/rules/ship` too. */
  resource?: string;
  /** Only entries with a smaller id (paging, newest first). */
  beforeId?: number;
  /** Most entries answered. */
  limit: number;
}

/** The stored audit entries. */
export interface AuditStore {
  /** Appends an entry and returns it with its id. Throws `ServiceUnavailable` if the write fails. */
  append(entry: NewAuditEntry): AuditEntry;
  /** Entries matching `query`, newest (highest id) first. */
  list(query: AuditQuery): AuditEntry[];
  /** One entry, or undefined. */
  get(id: number): AuditEntry | undefined;
  /**
   * Deletes entries made before `cutoffMs`, in batches that yield to the event loop between
   * them, so that a large backlog never stalls requests. Returns how many were deleted.
   */
  pruneOlderThan(cutoffMs: number): Promise<number>;
}
