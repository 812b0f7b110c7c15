/**
 * The signing secrets of a rule file's target (`signing.secrets`), resolved at load: each
 * `env:NAME` is read from the environment, and every secret's shape is checked (a
 * `whsec_` secret of 24 to 64 bytes, a `whsk_` ed25519 key of 32 or 64 bytes, in padded
 * base64). Messages name the entry and the variable, never a secret's value: they reach
 * logs, `relaybus rules check` and API error answers.
 *
 * The delivery layer parses the keys themselves (`delivery/sign-webhook.ts`), which rules
 * may not import; the checks here are the ones a typo or a wrong variable fails.
 */
import type { EnvironmentLookup } from "../config/environment.js";
import type { SigningSecret } from "../log/log-engine.js";
import { toPointer, type PointerProblem } from "./rule-problem.js";

/** Marks a secret read from the environment: `env:NAME`. */
export const ENV_REFERENCE_PREFIX = "env:";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The accepted secrets: prefix, kind, and the byte lengths its base64 may decode to. */
const FORMATS = [
  {
    prefix: "whsec_",
    kind: "hmac-sha256",
    bytes: (n: number) => n >= 24 && n <= 64,
    wants: "24 to 64 bytes",
  },
  {
    prefix: "whsk_",
    kind: "ed25519",
    bytes: (n: number) => n === 32 || n === 64,
    wants: "a 32-byte ed25519 seed",
  },
] as const;

/**
 * The secrets of one target, or undefined after pushing a problem per bad entry (pointers
 * under `base`, e.g. `/targets/0/signing/secrets/1`). Repeated secrets are kept once.
 */
export function resolveSigningSecrets(
  entries: readonly string[],
  env: EnvironmentLookup,
  base: readonly (string | number)[],
  problems: PointerProblem[],
): SigningSecret[] | undefined {
  const secrets: SigningSecret[] = [];
  const seen = new Set<string>();
  let ok = true;
  entries.forEach((entry, index) => {
    const pointer = toPointer([...base, index]);
    const fail = (message: string) => {
      problems.push({ pointer, message, code: "InvalidRule" });
      ok = false;
    };
    let material = entry;
    let from = "a literal secret";
    if (entry.startsWith(ENV_REFERENCE_PREFIX)) {
      const name = entry.slice(ENV_REFERENCE_PREFIX.length);
      if (!ENV_NAME.test(name)) {
        fail(
          `${JSON.stringify(entry)} does not name an environment variable (env:NAME, letters, digits and _)`,
        );
        return;
      }
      const value = env(name);
      if (value === undefined || value.trim() === "") {
        fail(
          `environment variable ${name} is not set; set it to the target's whsec_ or whsk_ secret`,
        );
        return;
      }
      material = value.trim();
      from = `environment variable ${name}`;
    }
    const format = FORMATS.find((f) => material.startsWith(f.prefix));
    if (format === undefined) {
      fail(
        `${from} is not a signing secret: expected env:NAME, whsec_... (HMAC-SHA256) or whsk_... (ed25519)`,
      );
      return;
    }
    const encoded = material.slice(format.prefix.length);
    const valid =
      encoded.length % 4 === 0 &&
      BASE64.test(encoded) &&
      format.bytes(Buffer.from(encoded, "base64").length);
    if (!valid) {
      fail(`${from}: a ${format.prefix} secret must be padded base64 of ${format.wants}`);
      return;
    }
    if (seen.has(material)) return;
    seen.add(material);
    secrets.push(Object.freeze({ kind: format.kind, material }));
  });
  return ok ? secrets : undefined;
}
