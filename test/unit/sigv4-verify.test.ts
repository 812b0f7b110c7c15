/**
 * The SigV4 verifier accepts exactly what the AWS SDK's own signer (`@smithy/signature-v4`)
 * signs, and refuses a changed body, header, path or query, the wrong secret, a skewed
 * clock and a wrong service, each with AWS's exception name.
 */
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { test } from "node:test";
import { SignatureV4 } from "@smithy/signature-v4";
import { RelaybusError } from "../../src/errors.js";
import { MAX_CLOCK_SKEW_MS, deriveSigningKey, verifySigV4, type SignedRequest } from "../../src/api/sigv4-verify.js";
import { Sha256 } from "../helpers/sigv4-sha256.js";

const ACCESS_KEY_ID = "AKRB0123456789ABCDEF";
const SECRET = "c2VjcmV0LWFjY2Vzcy1rZXktZm9yLXRlc3RzLTQwY2g";
const NOW_MS = Date.UTC(2026, 0, 2, 3, 4, 5);

/** Signs like the AWS SDK and returns the request as the server would receive it. */
async function signed(
  options: { path?: string; query?: Record<string, string>; body?: string; signingMs?: number; service?: string; secret?: string } = {},
): Promise<SignedRequest> {
  const signer = new SignatureV4({
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: options.secret ?? SECRET },
    region: "eu-west-1",
    service: options.service ?? "events",
    sha256: Sha256,
  });
  const body = options.body ?? '{"Entries":[{"Source":"a","DetailType":"b","Detail":"{}"}]}';
  const path = options.path ?? "/";
  const request = await signer.sign(
    {
      method: "POST",
      protocol: "http:",
      hostname: "127.0.0.1",
      port: 8080,
      path,
      query: options.query ?? {},
      headers: {
        host: "127.0.0.1:8080",
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AWSEvents.PutEvents",
        "content-length": String(Buffer.byteLength(body)),
      },
      body,
    },
    { signingDate: new Date(options.signingMs ?? NOW_MS) },
  );
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  const query = new URLSearchParams(options.query ?? {}).toString().replace(/\+/g, "%20");
  return { method: "POST", url: `${path}${query === "" ? "" : `?${query}`}`, headers, body: Buffer.from(body) };
}

const secretFor = (accessKeyId: string) => {
  assert.equal(accessKeyId, ACCESS_KEY_ID);
  return { secretAccessKey: SECRET };
};

function assertRefused(run: () => unknown, awsType: string, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof RelaybusError);
    assert.equal(error.code, "Unauthorized");
    assert.equal(error.details?.awsErrorType, awsType);
    assert.match(error.message, message);
    assert.ok(!error.message.includes(SECRET), "the message never carries the secret");
    return true;
  });
}

test("sigv4 - a request signed by the AWS SDK's signer verifies", async () => {
  const request = await signed();
  assert.deepEqual(verifySigV4(request, NOW_MS, secretFor), { secretAccessKey: SECRET });
});

test("sigv4 - paths and queries with characters to encode verify as the SDK signed them", async () => {
  // The SDK's serializers encode path labels once; the signer gets, and the wire carries, that path.
  const request = await signed({ path: "/a%20b/c%2Fd/%C3%BC/./x/../y", query: { "x y": "1 2", a: "é/=*" } });
  assert.doesNotThrow(() => verifySigV4(request, NOW_MS, secretFor));
});

test("sigv4 - a changed body, signed header, path or query is refused", async () => {
  const body = await signed();
  body.body = Buffer.from('{"Entries":[]}');
  assertRefused(() => verifySigV4(body, NOW_MS, secretFor), "InvalidSignatureException", /does not match/);

  const header = await signed();
  header.headers["x-amz-target"] = "AWSEvents.PutRule";
  assertRefused(() => verifySigV4(header, NOW_MS, secretFor), "InvalidSignatureException", /does not match/);

  const path = await signed();
  path.url = "/other";
  assertRefused(() => verifySigV4(path, NOW_MS, secretFor), "InvalidSignatureException", /does not match/);

  const query = await signed({ query: { a: "1" } });
  query.url = "/?a=2";
  assertRefused(() => verifySigV4(query, NOW_MS, secretFor), "InvalidSignatureException", /does not match/);
});

test("sigv4 - a signature made with another secret is refused", async () => {
  const request = await signed({ secret: "another-secret" });
  assertRefused(() => verifySigV4(request, NOW_MS, secretFor), "InvalidSignatureException", /secret access key of AKRB/);
});

test("sigv4 - a request time more than 5 minutes off is refused, within 5 minutes accepted", async () => {
  const late = await signed({ signingMs: NOW_MS - MAX_CLOCK_SKEW_MS - 1_000 });
  assertRefused(() => verifySigV4(late, NOW_MS, secretFor), "InvalidSignatureException", /more than 5 minutes/);
  const early = await signed({ signingMs: NOW_MS + MAX_CLOCK_SKEW_MS + 1_000 });
  assertRefused(() => verifySigV4(early, NOW_MS, secretFor), "InvalidSignatureException", /more than 5 minutes/);
  const within = await signed({ signingMs: NOW_MS - MAX_CLOCK_SKEW_MS + 1_000 });
  assert.doesNotThrow(() => verifySigV4(within, NOW_MS, secretFor));
});

test("sigv4 - another service in the credential scope is refused", async () => {
  const request = await signed({ service: "sqs" });
  assertRefused(() => verifySigV4(request, NOW_MS, secretFor), "InvalidSignatureException", /service must be events/);
});

test("sigv4 - a missing or malformed Authorization is refused before any secret is looked up", async () => {
  const lookups: string[] = [];
  const spy = (id: string) => {
    lookups.push(id);
    return { secretAccessKey: SECRET };
  };
  const missing = await signed();
  delete missing.headers.authorization;
  assertRefused(() => verifySigV4(missing, NOW_MS, spy), "UnrecognizedClientException", /Authorization: missing/);
  const basic = await signed();
  basic.headers.authorization = "Basic dTpw";
  assertRefused(() => verifySigV4(basic, NOW_MS, spy), "InvalidSignatureException", /algorithm must be AWS4-HMAC-SHA256/);
  const noDate = await signed();
  delete noDate.headers["x-amz-date"];
  assertRefused(() => verifySigV4(noDate, NOW_MS, spy), "InvalidSignatureException", /X-Amz-Date: missing/);
  assert.deepEqual(lookups, []);
});

test("sigv4 - the signing key matches AWS's documented example", () => {
  // AWS's "Examples of how to derive a signing key for Signature Version 4".
  const key = deriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
  assert.equal(key.toString("hex"), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
});
