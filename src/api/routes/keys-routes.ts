/**
 * API keys: `POST /v1/keys` (the token and the SigV4 secret are answered once, never again),
 * `GET /v1/keys`, `GET /v1/keys/{id}`, `POST /v1/keys/{id}:revoke`. Every one needs `admin`,
 * except the bootstrap (src/api/auth-guard.ts): while no key exists, the machine itself may
 * create the first, which must then be an `admin` key.
 */
import { Router } from "express";
import { RelaybusError } from "../../errors.js";
import { MAX_KEY_RATE_PER_SECOND } from "../auth-keys.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

const REVOKE_PATH: string = "/v1/keys/:id\\:revoke";

interface CreateKeyBody {
  name: string;
  scopes: string[];
  /** RFC 3339. */
  expiresAt?: string;
  /** Most events per second the key may publish, over every bus. */
  ratePerSecond?: number;
}

const parseCreateKey = compileBodyValidator<CreateKeyBody>({
  type: "object",
  additionalProperties: false,
  required: ["name", "scopes"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 128 },
    scopes: { type: "array", items: { type: "string", maxLength: 80 }, minItems: 1, maxItems: 64 },
    expiresAt: { type: "string", maxLength: 64 },
    ratePerSecond: { type: "number", exclusiveMinimum: 0, maximum: MAX_KEY_RATE_PER_SECOND },
  },
});

export function createKeysRouter(deps: ControlPlaneDeps): Router {
  const { apiKeys } = deps;
  const router = Router();

  const notFound = (id: string) =>
    new RelaybusError("KeyNotFound", `API key ${JSON.stringify(id)} does not exist`, { details: { id } });

  router
    .route("/v1/keys")
    .get((_req, res) => {
      res.json({ keys: apiKeys.list() });
    })
    .post((req, res) => {
      const body = parseCreateKey(req.body);
      if (apiKeys.noKeyExists() && !body.scopes.includes("admin")) {
        throw new RelaybusError(
          "ValidationError",
          "scopes: the first key must have the admin scope (relaybus keys create --admin), or no one could manage keys once auth is on",
          { details: { field: "scopes" } },
        );
      }
      const expiresAtMs = body.expiresAt === undefined ? undefined : parseTime(body.expiresAt);
      const created = apiKeys.create({
        name: body.name,
        scopes: body.scopes,
        ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
        ...(body.ratePerSecond === undefined ? {} : { ratePerSecond: body.ratePerSecond }),
      });
      // The key as lists show it: never its token or SigV4 secret.
      deps.audit.record(req, { action: "key.create", resource: `keys/${created.id}`, after: apiKeys.get(created.id) });
      res.status(201).json(created);
    })
    .all(methodNotAllowed(["GET", "POST"]));

  // Before `/v1/keys/:id`, whose `:id` would otherwise take `id:revoke` whole.
  router
    .route(REVOKE_PATH)
    .post((req, res) => {
      const { id } = req.params as { id: string };
      const before = apiKeys.get(id);
      const revoked = apiKeys.revoke(id);
      if (revoked === undefined) throw notFound(id);
      if (before?.state !== "revoked") deps.audit.record(req, { action: "key.revoke", resource: `keys/${id}`, before, after: revoked });
      res.json(revoked);
    })
    .all(methodNotAllowed(["POST"]));

  router
    .route("/v1/keys/:id")
    .get((req, res) => {
      const key = apiKeys.get(req.params.id);
      if (key === undefined) throw notFound(req.params.id);
      res.json(key);
    })
    .all(methodNotAllowed(["GET"]));

  return router;
}

function parseTime(text: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) {
    throw new RelaybusError("ValidationError", `expiresAt: expected an RFC 3339 time such as 2030-01-31T00:00:00Z, got ${JSON.stringify(text)}`, {
      details: { field: "expiresAt" },
    });
  }
  return ms;
}
