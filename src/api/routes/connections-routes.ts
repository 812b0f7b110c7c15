/**
 * Connections: the authorization, headers and query parameters of targets' requests, global
 * like EventBridge's connections (not per bus).
 *
 * - `GET /v1/connections`: every connection, from rule files and from the API.
 * - `GET|PUT|DELETE /v1/connections/{name}`: `PUT` creates (201) or replaces (200) an API
 *   connection; `DELETE` refuses (`ConnectionInUse`) while a rule's target names it, unless
 *   `force=true`. Connections from rule files are changed in the files
 *   (`ConnectionManagedByFile`).
 *
 * Secrets are stored as sent (a literal, or an `env:NAME` read when used) and never shown
 * again: answers show literal secrets as "***" and `env:NAME` as it is (redact-secrets.ts).
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import type { ConnectionDefinition, StoredConnection } from "../../log/connection-store.js";
import { problemsToError } from "../../rules/compile-rule.js";
import type { FileConnection } from "../../rules/load-rule-files.js";
import type { RuleOrigin } from "../../rules/model.js";
import type { ConnectionUser } from "../../rules/rule-registry.js";
import { validateConnectionDefinitionShape } from "../../rules/validate-rule.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { redactConnection } from "../redact-secrets.js";
import { booleanParam, methodNotAllowed, objectBody } from "../request-params.js";

/** A connection as the API shows it. */
export interface ConnectionView {
  name: string;
  /** A rule file (its file, line and pointer, `/connections/0`), or the API. */
  origin: RuleOrigin;
  /** As written or sent, literal secrets shown as "***". */
  definition: ConnectionDefinition;
  /** The targets that name it. */
  usedBy: ConnectionUser[];
  /** API connections only, ms since the epoch. */
  createdAtMs?: number;
  updatedAtMs?: number;
}

export function createConnectionsRouter(deps: ControlPlaneDeps): Router {
  const { registry } = deps;
  const store = deps.storage.connections;
  const router = Router();

  const fileConnection = (name: string): FileConnection | undefined =>
    registry.fileConnections().find((c) => c.definition.name === name);

  function managedByFile(connection: FileConnection): RelaybusError {
    const { file, line } = connection.origin;
    return new RelaybusError(
      "ConnectionManagedByFile",
      `connection ${JSON.stringify(connection.definition.name)} is declared in ${file}:${line}; change the file instead`,
      { details: { origin: connection.origin } },
    );
  }

  function view(
    definition: ConnectionDefinition,
    origin: RuleOrigin,
    stored?: StoredConnection,
  ): ConnectionView {
    return {
      name: definition.name,
      origin,
      definition: redactConnection(definition),
      usedBy: registry.connectionUsers(definition.name),
      ...(stored === undefined
        ? {}
        : { createdAtMs: stored.createdAtMs, updatedAtMs: stored.updatedAtMs }),
    };
  }

  router
    .route("/v1/connections")
    .get((_req, res) => {
      const views = [
        ...registry.fileConnections().map((c) => view(c.definition, c.origin)),
        ...store.list().map((c) => view(c.definition, { kind: "api" }, c)),
      ];
      views.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      res.json({ connections: views });
    })
    .all(methodNotAllowed(["GET"]));

  router
    .route("/v1/connections/:name")
    .get((req, res) => {
      const { name } = req.params;
      const file = fileConnection(name);
      if (file !== undefined) {
        res.json(view(file.definition, file.origin));
        return;
      }
      const stored = store.get(name);
      if (stored === undefined) throw notFound(name);
      res.json(view(stored.definition, { kind: "api" }, stored));
    })
    .put((req, res) => {
      const { name } = req.params;
      const body = objectBody(req);
      if (body.name !== undefined && body.name !== name) {
        throw new RelaybusError(
          "ValidationError",
          `body.name: ${JSON.stringify(body.name)} differs from the connection in the path (${JSON.stringify(name)})`,
        );
      }
      const definition = { name, ...body };
      // Checks every `env:NAME` is set now, so a typo fails here rather than at delivery.
      const problems = validateConnectionDefinitionShape(definition);
      if (problems.length > 0) throw problemsToError(problems);
      const file = fileConnection(name);
      if (file !== undefined) throw managedByFile(file);
      const previous = store.get(name);
      const nowMs = Date.now();
      store.put({
        name,
        definition: definition as unknown as ConnectionDefinition,
        createdAtMs: previous?.createdAtMs ?? nowMs,
        updatedAtMs: nowMs,
      });
      const stored = store.get(name)!;
      const after = view(stored.definition, { kind: "api" }, stored);
      // Views only: their literal secrets are "***" (redactConnection).
      deps.audit.record(req, {
        action: "connection.put",
        resource: `connections/${name}`,
        before: previous === undefined ? undefined : view(previous.definition, { kind: "api" }, previous),
        after,
      });
      res.status(previous === undefined ? 201 : 200).json(after);
    })
    .delete((req, res) => {
      const { name } = req.params;
      const force = booleanParam(req, "force", false);
      const file = fileConnection(name);
      if (file !== undefined) throw managedByFile(file);
      const previous = store.get(name);
      if (previous === undefined) throw notFound(name);
      const users = registry.connectionUsers(name);
      if (users.length > 0 && !force) {
        const listed = users.map((u) => `${u.bus}/${u.rule}/${u.target}`).join(", ");
        throw new RelaybusError(
          "ConnectionInUse",
          `connection ${JSON.stringify(name)} is used by ${users.length} target(s) (${listed}); change them first or pass force=true`,
          { details: { usedBy: users } },
        );
      }
      store.delete(name);
      deps.audit.record(req, {
        action: "connection.delete",
        resource: `connections/${name}`,
        before: view(previous.definition, { kind: "api" }, previous),
      });
      res.status(204).end();
    })
    .all(methodNotAllowed(["GET", "PUT", "DELETE"]));

  return router;
}

function notFound(name: string): RelaybusError {
  return new RelaybusError(
    "ConnectionNotFound",
    `connection ${JSON.stringify(name)} does not exist`,
  );
}
