/**
 * Signing secrets of a target (Standard Webhooks), for rotation:
 *
 * - `GET /v1/buses/{bus}/rules/{rule}/targets/{target}/secrets`: every secret of the target,
 *   from its rule file (`signing.secrets`) and from the API, without the secrets themselves.
 * - `POST .../secrets`: creates one (`{"kind": "hmac-sha256" | "ed25519",
 *   "expireOthersAfterSeconds": 86400}`, both optional). The answer is the only place a
 *   `whsec_` secret is ever shown. The target's other API secrets keep signing until
 *   `expireOthersAfterSeconds` has passed (0: they stop now), so receivers can switch over.
 * - `DELETE .../secrets/{id}`: revokes one at once. Secrets from a rule file are changed in
 *   the file (`RuleManagedByFile`).
 *
 * An ed25519 secret's private key (`whsk_`) never leaves Relaybus: the creation answer and
 * the list show its `whpk_` public key, which is all a receiver needs.
 */
import { randomUUID } from "node:crypto";
import { Router, type Request } from "express";
import { publicKeyOf, secretHint, generateSigningSecret } from "../../delivery/sign-webhook.js";
import { RelaybusError } from "../../errors.js";
import {
  TARGET_SECRET_KINDS,
  type SigningSecret,
  type StoredTargetSecret,
  type TargetSecretKind,
} from "../../log/log-engine.js";
import type { ControlPlaneDeps } from "../control-plane-deps.js";
import { methodNotAllowed } from "../request-params.js";
import { compileBodyValidator } from "../validate-body.js";

/** Default of `expireOthersAfterSeconds`: the other secrets keep signing for 24 hours. */
export const DEFAULT_EXPIRE_OTHERS_AFTER_SECONDS = 86_400;
/** Largest `expireOthersAfterSeconds`: 30 days. */
export const MAX_EXPIRE_OTHERS_AFTER_SECONDS = 2_592_000;
/** Ids of secrets from a rule file: `file-1`, `file-2`, ... in the file's order. */
const FILE_SECRET_ID = /^file-(\d+)$/;

interface CreateSecretBody {
  kind?: TargetSecretKind;
  expireOthersAfterSeconds?: number;
}

const parseCreateSecret = compileBodyValidator<CreateSecretBody>({
  type: "object",
  additionalProperties: false,
  properties: {
    kind: { enum: [...TARGET_SECRET_KINDS] },
    expireOthersAfterSeconds: {
      type: "integer",
      minimum: 0,
      maximum: MAX_EXPIRE_OTHERS_AFTER_SECONDS,
    },
  },
});

/** A secret as lists show it: never the secret itself. */
export interface TargetSecretView {
  id: string;
  kind: TargetSecretKind;
  /** `file`: from the target's `signing.secrets` in its rule file; `api`: created here. */
  source: "file" | "api";
  /** Whether it signs now. */
  active: boolean;
  /** The prefix and 8 hex digits of the secret's SHA-256, to tell secrets apart. */
  hint: string;
  /** ed25519 only: the `whpk_` public key receivers verify with. */
  publicKey?: string;
  /** API secrets only, ms since the epoch. */
  createdAtMs?: number;
  /** When it stops signing, ms since the epoch; absent while it has no end. */
  expiresAtMs?: number;
}

export function createTargetSecretsRouter(deps: ControlPlaneDeps): Router {
  const { registry, logger } = deps;
  const secrets = deps.storage.targetSecrets;
  const router = Router();

  /** The target named in the path, with its file secrets; BusNotFound, RuleNotFound, TargetNotFound. */
  function targetOf(req: Request<{ bus: string; rule: string; target: string }>) {
    const { bus, rule, target } = req.params;
    const view = registry.getRule(bus, rule); // BusNotFound, RuleNotFound
    const compiled = registry.findTarget(bus, rule, target);
    if (compiled === undefined) {
      throw new RelaybusError(
        "TargetNotFound",
        `rule ${JSON.stringify(rule)} of bus ${JSON.stringify(bus)} has no target ${JSON.stringify(target)}`,
        { details: { bus, rule, target } },
      );
    }
    return {
      bus,
      rule,
      targetId: target,
      origin: view.origin,
      fileSecrets: compiled.signingSecrets ?? [],
    };
  }

  router
    .route("/v1/buses/:bus/rules/:rule/targets/:target/secrets")
    .get((req, res) => {
      const { bus, rule, targetId, fileSecrets } = targetOf(req);
      const nowMs = Date.now();
      res.json({
        secrets: [
          ...fileSecrets.map((secret, index) => fileSecretView(secret, index)),
          ...secrets.listSecrets(bus, rule, targetId).map((secret) => apiSecretView(secret, nowMs)),
        ],
      });
    })
    .post((req, res) => {
      const { bus, rule, targetId } = targetOf(req);
      const body = req.body === undefined ? {} : parseCreateSecret(req.body);
      const kind = body.kind ?? "hmac-sha256";
      const afterSeconds = body.expireOthersAfterSeconds ?? DEFAULT_EXPIRE_OTHERS_AFTER_SECONDS;
      const nowMs = Date.now();
      const generated = generateSigningSecret(kind);
      const secret: StoredTargetSecret = {
        bus,
        rule,
        targetId,
        id: randomUUID(),
        ...generated,
        createdAtMs: nowMs,
      };
      secrets.addSecret(secret, { expireOthersAtMs: nowMs + afterSeconds * 1000 });
      logger.info("signing secret created", {
        bus,
        rule,
        targetId,
        id: secret.id,
        kind,
        expireOthersAfterSeconds: afterSeconds,
      });
      // The secret's view only: its hint, never the secret.
      deps.audit.record(req, {
        action: "target.secret.create",
        resource: `buses/${bus}/rules/${rule}/targets/${targetId}/secrets/${secret.id}`,
        after: { ...apiSecretView(secret, nowMs), expireOthersAfterSeconds: afterSeconds },
      });
      // The answer carries a secret: no cache may keep it.
      res.setHeader("cache-control", "no-store");
      res.status(201).json({
        ...apiSecretView(secret, nowMs),
        ...(kind === "hmac-sha256" ? { secret: secret.material } : {}),
      });
    })
    .all(methodNotAllowed(["GET", "POST"]));

  router
    .route("/v1/buses/:bus/rules/:rule/targets/:target/secrets/:id")
    .delete((req, res) => {
      const { bus, rule, targetId, origin, fileSecrets } = targetOf(req);
      const { id } = req.params;
      const fromFile = FILE_SECRET_ID.exec(id);
      if (
        fromFile !== null &&
        Number(fromFile[1]) >= 1 &&
        Number(fromFile[1]) <= fileSecrets.length
      ) {
        const where = origin.kind === "file" ? `${origin.file}:${origin.line}` : "its rule file";
        throw new RelaybusError(
          "RuleManagedByFile",
          `secret ${JSON.stringify(id)} comes from signing.secrets of target ${JSON.stringify(targetId)} in ${where}; remove it from the file and reload`,
          { details: { origin } },
        );
      }
      const previous = secrets.listSecrets(bus, rule, targetId).find((secret) => secret.id === id);
      if (!secrets.revokeSecret(bus, rule, targetId, id)) {
        throw new RelaybusError(
          "SecretNotFound",
          `target ${JSON.stringify(targetId)} of rule ${JSON.stringify(rule)} has no secret ${JSON.stringify(id)}`,
          { details: { bus, rule, target: targetId, id } },
        );
      }
      logger.info("signing secret revoked", { bus, rule, targetId, id });
      deps.audit.record(req, {
        action: "target.secret.revoke",
        resource: `buses/${bus}/rules/${rule}/targets/${targetId}/secrets/${id}`,
        before: previous === undefined ? undefined : apiSecretView(previous, Date.now()),
      });
      res.status(204).end();
    })
    .all(methodNotAllowed(["DELETE"]));

  return router;
}

function apiSecretView(secret: StoredTargetSecret, nowMs: number): TargetSecretView {
  return {
    id: secret.id,
    kind: secret.kind,
    source: "api",
    active: secret.expiresAtMs === undefined || secret.expiresAtMs > nowMs,
    hint: secretHint(secret.material),
    ...(secret.publicKey === undefined ? {} : { publicKey: secret.publicKey }),
    createdAtMs: secret.createdAtMs,
    ...(secret.expiresAtMs === undefined ? {} : { expiresAtMs: secret.expiresAtMs }),
  };
}

function fileSecretView(secret: SigningSecret, index: number): TargetSecretView {
  let publicKey: string | undefined;
  if (secret.kind === "ed25519") {
    try {
      publicKey = publicKeyOf(secret.material);
    } catch {
      // Its shape was checked at load; a key that still fails to parse is logged by the signer.
    }
  }
  return {
    id: `file-${index + 1}`,
    kind: secret.kind,
    source: "file",
    active: true,
    hint: secretHint(secret.material),
    ...(publicKey === undefined ? {} : { publicKey }),
  };
}
