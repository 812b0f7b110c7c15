/**
 * The AWS protocol route with auth on: the official AWS SDK publishes with Relaybus-issued
 * credentials, and gets AWS-shaped errors (the exception names the SDKs know) for a wrong
 * secret, an unknown or revoked access key, a key without the right publish scope, and a
 * signature whose time is more than 5 minutes off.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { SignatureV4 } from "@smithy/signature-v4";
import { startTestService, type TestService } from "../helpers/service.js";
import { Sha256 } from "../helpers/sigv4-sha256.js";

type Obj = Record<string, unknown>;

describe("auth sigv4", () => {
  let service: TestService;
  let admin: Obj;

  before(async () => {
    service = await startTestService({ rules: { "orders.yaml": "bus: orders\nrules: []\n" } });
    const created = await service.post("/v1/keys", { name: "root", scopes: ["admin"] });
    admin = (await created.json()) as Obj;
  });
  after(async () => {
    await service.close();
  });

  const createKey = async (scopes: string[]) => {
    const response = await service.post("/v1/keys", { name: scopes.join(" "), scopes }, { authorization: `Bearer ${String(admin.token)}` });
    assert.equal(response.status, 201);
    return (await response.json()) as Obj;
  };

  const client = (accessKeyId: string, secretAccessKey: string) =>
    new EventBridgeClient({ endpoint: service.url, region: "eu-central-1", credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });

  const entry = (bus: string) => ({ EventBusName: bus, Source: "sdk.auth", DetailType: "t", Detail: "{}" });

  async function assertAwsError(run: Promise<unknown>, name: string, status: number, message: RegExp): Promise<void> {
    await assert.rejects(run, (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(error.name, name, String(error));
      assert.equal(error.$metadata?.httpStatusCode, status);
      assert.match(error.message, message);
      return true;
    });
  }

  test("auth sigv4 - the AWS SDK publishes with a Relaybus access key pair", async () => {
    const key = await createKey(["publish:orders"]);
    const sdk = client(String(key.accessKeyId), String(key.secretAccessKey));
    try {
      const output = await sdk.send(new PutEventsCommand({ Entries: [entry("orders"), entry("orders")] }));
      assert.equal(output.FailedEntryCount, 0);
      assert.equal(output.Entries?.length, 2);
      assert.ok(output.Entries?.every((e) => typeof e.EventId === "string"));
      // Mixed buses: the allowed entry is stored, the other refused in its place.
      const mixed = await sdk.send(new PutEventsCommand({ Entries: [entry("orders"), entry("default")] }));
      assert.equal(mixed.FailedEntryCount, 1);
      assert.equal(mixed.Entries?.[1]?.ErrorCode, "Forbidden");
      // Only buses it may not publish to: the whole request is refused.
      await assertAwsError(sdk.send(new PutEventsCommand({ Entries: [entry("default")] })), "AccessDeniedException", 403, /publish to bus "default"/);
    } finally {
      sdk.destroy();
    }
  });

  test("auth sigv4 - a wrong secret, an unknown or a revoked access key get AWS-shaped errors", async () => {
    const key = await createKey(["publish:*"]);
    const wrong = client(String(key.accessKeyId), "x".repeat(40));
    const unknown = client("AKRB0000000000000000", String(key.secretAccessKey));
    const foreign = client("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    const good = client(String(key.accessKeyId), String(key.secretAccessKey));
    try {
      await assertAwsError(wrong.send(new PutEventsCommand({ Entries: [entry("orders")] })), "InvalidSignatureException", 401, /does not match/);
      await assertAwsError(unknown.send(new PutEventsCommand({ Entries: [entry("orders")] })), "UnrecognizedClientException", 401, /not known/);
      await assertAwsError(foreign.send(new PutEventsCommand({ Entries: [entry("orders")] })), "UnrecognizedClientException", 401, /not a Relaybus access key/);
      assert.equal((await good.send(new PutEventsCommand({ Entries: [entry("orders")] }))).FailedEntryCount, 0);
      await service.post(`/v1/keys/${String(key.id)}:revoke`, undefined, { authorization: `Bearer ${String(admin.token)}` });
      await assertAwsError(good.send(new PutEventsCommand({ Entries: [entry("orders")] })), "UnrecognizedClientException", 401, /was revoked/);
    } finally {
      for (const sdk of [wrong, unknown, foreign, good]) sdk.destroy();
    }
  });

  test("auth sigv4 - a key without publish, and a read key's token on the AWS route, are refused", async () => {
    const key = await createKey(["read"]);
    const sdk = client(String(key.accessKeyId), String(key.secretAccessKey));
    try {
      await assertAwsError(sdk.send(new PutEventsCommand({ Entries: [entry("orders")] })), "AccessDeniedException", 403, /may not publish/);
    } finally {
      sdk.destroy();
    }
  });

  test("auth sigv4 - a signature made 10 minutes ago is refused as InvalidSignatureException", async () => {
    const key = await createKey(["publish:*"]);
    const url = new URL(service.url);
    const body = JSON.stringify({ Entries: [entry("orders")] });
    const signer = new SignatureV4({
      credentials: { accessKeyId: String(key.accessKeyId), secretAccessKey: String(key.secretAccessKey) },
      region: "eu-central-1",
      service: "events",
      sha256: Sha256,
    });
    const sign = (signingMs: number) =>
      signer.sign(
        {
          method: "POST",
          protocol: "http:",
          hostname: url.hostname,
          port: Number(url.port),
          path: "/",
          query: {},
          headers: { host: url.host, "content-type": "application/x-amz-json-1.1", "x-amz-target": "AWSEvents.PutEvents" },
          body,
        },
        { signingDate: new Date(signingMs) },
      );
    const send = async (signingMs: number) => {
      const request = await sign(signingMs);
      return fetch(`${service.url}/`, { method: "POST", headers: request.headers, body });
    };
    const skewed = await send(Date.now() - 10 * 60_000);
    assert.equal(skewed.status, 401);
    assert.equal(skewed.headers.get("x-amzn-errortype"), "InvalidSignatureException");
    const answer = (await skewed.json()) as Obj;
    assert.equal(answer.__type, "InvalidSignatureException");
    assert.match(String(answer.message), /more than 5 minutes from the server's time/);
    assert.ok(!JSON.stringify(answer).includes(String(key.secretAccessKey)));
    // The same request signed now goes through.
    assert.equal((await send(Date.now())).status, 200);
  });
});
