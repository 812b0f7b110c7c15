// Receiver-side check of Standard Webhooks `v1a` (ed25519) signatures with node:crypto, since
// the standardwebhooks package checks `v1` only. Independent of our signing code.
import { createPublicKey, verify } from "node:crypto";

/** True when some `v1a,` entry of a `webhook-signature` header verifies with the `whpk_` key over `id.timestamp.body`. */
export function verifiesEd25519(
  header: string,
  publicKey: string,
  id: string,
  timestamp: string,
  body: Buffer | string,
): boolean {
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey.slice("whpk_".length), "base64").toString("base64url") },
    format: "jwk",
  });
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, "utf8"), Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8")]);
  return header
    .split(" ")
    .filter((entry) => entry.startsWith("v1a,"))
    .some((entry) => verify(null, content, key, Buffer.from(entry.slice(4), "base64")));
}
