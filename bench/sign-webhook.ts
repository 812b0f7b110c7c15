// Cost of signing one delivery attempt (Standard Webhooks `webhook-signature`), as the
// delivery engine does it: through the signer, whose keys are parsed once per secret, for
// bodies of 1 KB and 64 KB, with one HMAC secret, two (a rotation), and one ed25519 key.
// For scale, the same with the key parsed on every call (what the signer's cache saves).
// Run: npx tsx bench/sign-webhook.ts
// Not a test: it prints figures a person can compare between commits and machines.
import { performance } from "node:perf_hooks";
import {
  createWebhookSigner,
  generateSigningSecret,
  parseSigningSecret,
  signatureHeader,
} from "../src/delivery/sign-webhook.js";
import type { SigningSecret } from "../src/log/log-engine.js";
import { silentLogger } from "../src/types.js";

const ID = "0190a6c1-7d2e-7f3a-9b4c-5d6e7f809a1b";
const TIMESTAMP = String(Math.floor(Date.now() / 1000));

function body(bytes: number): string {
  const filler = "x".repeat(Math.max(0, bytes - 40));
  return JSON.stringify({ type: "order.created", data: { filler } });
}

function secret(kind: SigningSecret["kind"]): SigningSecret {
  return Object.freeze({ kind, material: generateSigningSecret(kind).material });
}

/** Mean µs per call of `run` over about `budgetMs` of calls, after a warm-up. */
function measure(run: () => unknown, budgetMs = 500): number {
  for (let i = 0; i < 2_000; i++) run();
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (let i = 0; i < 1_000; i++) run();
    calls += 1_000;
    elapsed = performance.now() - started;
  }
  return (elapsed * 1000) / calls;
}

const cases: { name: string; secrets: SigningSecret[] }[] = [
  { name: "1 × HMAC-SHA256", secrets: [secret("hmac-sha256")] },
  { name: "2 × HMAC-SHA256 (rotation)", secrets: [secret("hmac-sha256"), secret("hmac-sha256")] },
  { name: "1 × ed25519", secrets: [secret("ed25519")] },
];
const target = { bus: "orders", rule: "big-orders", targetId: "fulfil" };

console.log(`node ${process.version}; µs per attempt (lower is better)\n`);
console.log("case                          body   signer (cached keys)   key parsed per call");
for (const bytes of [1_024, 65_536]) {
  const payload = body(bytes);
  for (const { name, secrets } of cases) {
    const signer = createWebhookSigner({ secretsFor: () => secrets, logger: silentLogger });
    const cached = measure(() => signer.signature(target, ID, TIMESTAMP, payload, 0));
    const uncached = measure(() =>
      signatureHeader(
        secrets.map((s) => parseSigningSecret(s.material)),
        ID,
        TIMESTAMP,
        payload,
      ),
    );
    console.log(
      `${name.padEnd(29)} ${`${bytes / 1024} KB`.padStart(5)}   ${cached.toFixed(1).padStart(20)}   ${uncached.toFixed(1).padStart(19)}`,
    );
  }
}
