/**
 * The official clients publish to Relaybus unmodified: the AWS SDK's EventBridge client
 * (AWS JSON protocol) and the CloudEvents SDK's HTTP emitter (binary and structured mode).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { CloudEvent, emitterFor, httpTransport, Mode } from "cloudevents";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

describe("sdk clients", () => {
  let receiver: Receiver;
  let service: TestService;

  before(async () => {
    receiver = await createReceiver();
    service = await startTestService({
      rules: {
        "sdk.yaml": `bus: default
rules:
  - name: from-sdks
    pattern:
      source: [{prefix: sdk.}]
    targets:
      - id: hook
        webhook: {url: "${receiver.url}/sdk"}
        format: cloudevents-structured
`,
      },
    });
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  test("sdk clients - @aws-sdk/client-eventbridge PutEvents reaches the webhook", async () => {
    const client = new EventBridgeClient({
      endpoint: service.url,
      region: "us-east-1",
      credentials: { accessKeyId: "relaybus", secretAccessKey: "relaybus" },
    });
    try {
      const output = await client.send(
        new PutEventsCommand({
          Entries: [
            { Source: "sdk.aws", DetailType: "thing.happened", Detail: JSON.stringify({ n: 1 }), Time: new Date("2026-01-02T03:04:05Z") },
            { Source: "sdk.aws", DetailType: "thing.happened", Detail: "not json" },
          ],
        }),
      );
      assert.equal(output.FailedEntryCount, 1);
      const id = output.Entries?.[0]?.EventId;
      assert.ok(id);
      assert.equal(output.Entries?.[1]?.ErrorCode, "MalformedDetail");

      const [request] = await receiver.waitFor(1, 10_000, "/sdk");
      const event = JSON.parse(request!.body) as Record<string, unknown>;
      assert.equal(event.id, id);
      assert.equal(event.source, "sdk.aws");
      assert.equal(event.type, "thing.happened");
      assert.equal(event.time, "2026-01-02T03:04:05.000Z");
      assert.deepEqual(event.data, { n: 1 });
    } finally {
      client.destroy();
    }
  });

  test("sdk clients - the cloudevents SDK emitter publishes in binary and structured mode", async () => {
    const before = receiver.requestsTo("/sdk").length;
    const url = `${service.url}/v1/buses/default/cloudevents`;
    for (const mode of [Mode.BINARY, Mode.STRUCTURED]) {
      const emit = emitterFor(httpTransport(url), { mode });
      await emit(new CloudEvent({ id: `ce-${mode}`, source: "sdk.cloudevents", type: "thing.happened", data: { mode }, myext: "x1" }));
    }
    const requests = await receiver.waitFor(before + 2, 10_000, "/sdk");
    const events = requests.slice(before).map((r) => JSON.parse(r.body) as Record<string, unknown>);
    const byId = new Map(events.map((e) => [e.id, e]));
    for (const mode of [Mode.BINARY, Mode.STRUCTURED]) {
      const event = byId.get(`ce-${mode}`);
      assert.ok(event, `the ${mode} event arrived`);
      assert.deepEqual(event.data, { mode });
      assert.equal(event.myext, "x1", "extension attributes travel");
    }
  });
});
