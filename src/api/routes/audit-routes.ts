/**
 * The audit log, read (it is written by the mutating routes, src/api/audit-log.ts):
 *
 * - `GET /v1/audit`: newest first; filters `from`, `to` (ms since the epoch or RFC 3339;
 *   `to` exclusive), `actor` (`local`, `anonymous`, `rule-files`, or an API key's id or
 *   name), `action` (`rule.create`, or a family `rule.*`), `resource` (a path and everything
 *   under it: `buses/orders`), `limit` (1 to 1,000, default 100), `before` (an entry id:
 *   the next page is `before=<nextBefore>`).
 * - `GET /v1/audit/{id}`: one entry.
 *
 * Both need `admin`: entries show who holds which key and what every change was.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import { AUDIT_ACTIONS, type AuditEntry, type AuditQuery } from "../../log/audit-store.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { parseTime } from "../dead-letter-redrive.js";
import { integerParam, limitParam, methodNotAllowed, queryParam } from "../request-params.js";

/** Longest `actor` or `resource` filter accepted. */
const MAX_FILTER_LENGTH = 512;
/** Action families: `rule.*` for `rule.create`, `rule.delete`, ... */
const ACTION_FAMILIES = new Set(
  AUDIT_ACTIONS.flatMap((action) => prefixesOf(action).map((prefix) => `${prefix}.*`)),
);

/** An entry as the API shows it: its time also as RFC 3339. */
export interface AuditEntryView extends AuditEntry {
  at: string;
}

export function createAuditRouter(deps: ControlPlaneDeps): Router {
  const store = deps.storage.audit;
  const router = Router();

  router
    .route("/v1/audit")
    .get((req, res) => {
      const query: AuditQuery = { limit: limitParam(req, 100) };
      const from = queryParam(req, "from");
      const to = queryParam(req, "to");
      if (from !== undefined) query.fromMs = parseTime(from, "from");
      if (to !== undefined) query.toMs = parseTime(to, "to");
      const actor = textFilter(queryParam(req, "actor"), "actor");
      if (actor !== undefined) query.actor = actor;
      const action = queryParam(req, "action");
      if (action !== undefined) query.action = parseActionFilter(action);
      const resource = textFilter(queryParam(req, "resource"), "resource");
      if (resource !== undefined) query.resource = resource;
      if (queryParam(req, "before") !== undefined) query.beforeId = integerParam(req, "before", 0);
      const entries = store.list(query);
      const last = entries.at(-1);
      res.json({
        entries: entries.map(toView),
        // A full page may have more behind it; an empty next page is the end.
        ...(entries.length === query.limit && last !== undefined ? { nextBefore: last.id } : {}),
      });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route("/v1/audit/:id")
    .get((req, res) => {
      const { id } = req.params;
      const entry = /^[1-9]\d{0,14}$/.test(id) ? store.get(Number(id)) : undefined;
      if (entry === undefined) {
        throw new RelaybusError(
          "AuditEntryNotFound",
          `audit entry ${JSON.stringify(id)} does not exist`,
          { details: { id } },
        );
      }
      res.json(toView(entry));
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}

function toView(entry: AuditEntry): AuditEntryView {
  const { id, atMs, ...rest } = entry;
  return { id, at: new Date(atMs).toISOString(), atMs, ...rest };
}

function textFilter(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (value === "" || value.length > MAX_FILTER_LENGTH) {
    throw new RelaybusError(
      "ValidationError",
      `${field}: expected 1 to ${MAX_FILTER_LENGTH} characters, got ${value.length}`,
      {
        details: { field },
      },
    );
  }
  return value;
}

/** An action of the list, or a family of them (`rule.*`); anything else is a typo worth saying so. */
function parseActionFilter(value: string): string {
  if ((AUDIT_ACTIONS as readonly string[]).includes(value) || ACTION_FAMILIES.has(value))
    return value;
  throw new RelaybusError(
    "ValidationError",
    `action: ${JSON.stringify(value.slice(0, 64))} is not an audited action; use one of ${AUDIT_ACTIONS.join(", ")}, or a family such as rule.*`,
    { details: { field: "action" } },
  );
}

/** `target.secret.create` → `target`, `target.secret`. */
function prefixesOf(action: string): string[] {
  const parts = action.split(".");
  return parts.slice(0, -1).map((_, index) => parts.slice(0, index + 1).join("."));
}
