/**
 * `relaybus trace` as a real child process (through tsx) against a real Relaybus and a real
 * receiver on loopback. The child is run asynchronously: the server lives in this process,
 * and a synchronous spawn would stop it from answering.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { EventTrace } from "../../src/api/routes/event-trace-routes.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { runCli, type CliRun } from "../helpers/run-cli.js";
import { startTestService, type TestService } from "../helpers/service.js";



function rules(receiverUrl: string): string {
  return `bus: orders
rules:
  - name: ship
    pattern: {source: [shop.orders]}
    targets:
      - id: warehouse
        webhook:
          url: "${receiverUrl}/warehouse"
          headers: {authorization: "Bearer s3cret"}
        format: transform
        transform: '{"order": data.id}'
        retry: {maxAttempts: 3, delaysMs: [10]}
`;
}

describe("relaybus trace", () => {
  let receiver: Receiver;
  let service: TestService;
  let eventId: string;

  /** Runs `relaybus trace ...args` against the service, with RELAYBUS_URL pointing at it. */
  function trace(...args: string[]): Promise<CliRun> {
    return runCli(["trace", ...args], { RELAYBUS_URL: service.url });
  }

  async function apiTrace(id: string, query = ""): Promise<EventTrace> {
    const response = await service.get(`/v1/events/${encodeURIComponent(id)}/trace${query}`);
    assert.equal(response.status, 200);
    return (await response.json()) as EventTrace;
  }

  before(async () => {
    receiver = await createReceiver();
    receiver.script("/warehouse", [{ status: 500 }]);
    service = await startTestService({ rules: { "orders.yaml": rules(receiver.url) } });
    const published = await service.post("/v1/events", {
      Entries: [
        {
          EventBusName: "orders",
          Source: "shop.orders",
          DetailType: "created",
          Detail: '{"id":"o-7"}',
        },
      ],
    });
    eventId = ((await published.json()) as { Entries: { EventId: string }[] }).Entries[0]!.EventId;
    for (const deadline = Date.now() + 10_000; (await apiTrace(eventId)).ended !== "delivered";) {
      assert.ok(Date.now() < deadline, "the event was delivered");
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const bus of ["default", "orders"]) {
      const sent = await service.post(
        `/v1/buses/${bus}/cloudevents`,
        { specversion: "1.0", id: "dup-7", source: "cli.twice", type: "dup" },
        { "content-type": "application/cloudevents+json" },
      );
      assert.equal(sent.status, 200);
      await sent.body?.cancel();
    }
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  test("cli trace - prints the timeline and the payloads", async () => {
    const [shown, json] = await Promise.all([
      trace(eventId),
      trace(eventId, "--bus", "orders", "--json"),
    ]);
    assert.equal(shown.code, 0, shown.stderr);
    const t = await apiTrace(eventId);
    const [delivery] = t.deliveries;
    const out = shown.stdout;
    assert.match(out, new RegExp(`^event ${eventId} on bus orders: delivered\n`));
    assert.ok(
      out.includes(
        `  received:  ${t.received!.at}, offset ${t.received!.offset}, ${t.received!.sizeBytes} bytes, 1 unit(s), shop.orders / created\n`,
      ),
      out,
    );
    assert.match(out, /\n {2}matched: {3}ship\n/);
    assert.doesNotMatch(out, /note:/);
    // The timeline, in time order: received, matched, the two attempts, the success.
    const timeline = out.slice(out.indexOf("timeline:\n"), out.indexOf("\n\npayload of"));
    const moments = timeline.split("\n").slice(1);
    assert.equal(moments.length, 5, timeline);
    assert.match(moments[0]!, new RegExp(`^ {2}${escape(t.received!.at)} {2}\\s+received$`));
    assert.match(
      moments[1]!,
      /ship\/warehouse {2}matched, for http:\/\/127\.0\.0\.1:\d+\/warehouse$/,
    );
    assert.match(
      moments[2]!,
      /ship\/warehouse {2}attempt 1: HTTP 500, retryable, \d+ ms \(HTTP 500\)$/,
    );
    assert.match(moments[3]!, /ship\/warehouse {2}attempt 2: HTTP 200, success, \d+ ms$/);
    assert.match(
      moments[4]!,
      new RegExp(`^ {2}${escape(delivery!.finishedAt!)} {2}ship/warehouse {2}succeeded$`),
    );
    const times = moments.map((m) => Date.parse(m.trim().split(" ")[0]!));
    assert.deepEqual(
      [...times].sort((a, b) => a - b),
      times,
    );

    assert.ok(
      out.includes(
        `\n\npayload of ship/warehouse (delivery ${delivery!.deliveryId}, succeeded): POST ${receiver.url}/warehouse\n`,
      ),
      out,
    );
    assert.match(out, /\n {2}authorization: \*\*\*\n/);
    assert.doesNotMatch(out, /s3cret/);
    assert.ok(out.endsWith('  body:\n    {\n      "order": "o-7"\n    }\n'), out);

    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), t);
  });

  test("cli trace - an unknown id and an id on several buses exit 1 saying why", async () => {
    const [missing, ambiguous, named] = await Promise.all([
      trace("never-published"),
      trace("dup-7"),
      trace("dup-7", "--bus", "default"),
    ]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^EventNotFound: event "never-published": nothing is known of it on any bus/,
    );
    assert.equal(ambiguous.code, 1);
    assert.match(
      ambiguous.stderr,
      /^EventIdAmbiguous: event "dup-7" is on several buses \(default, orders\); name one with \?bus=/,
    );
    assert.equal(named.code, 0, named.stderr);
    assert.match(named.stdout, /^event dup-7 on bus default: no rules matched\n/);
    assert.match(named.stdout, /\n {2}matched: {3}no rule on record\n/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
