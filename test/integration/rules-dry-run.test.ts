// POST /v1/buses/{bus}/rules/{name}:dry-run against a real server: events go in through the
// real ingest path into a real SQLite log, and a real receiver is every rule's target. A dry
// run must answer what would have matched and been sent, and send nothing.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { assertMatchesContract } from "../helpers/openapi.js";
import { assertNothingOpen } from "../helpers/open-handles.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

interface TargetPreview {
  targetId: string;
  format: string;
  url: string;
  outcome: "payload" | "error" | "omitted";
  headers?: Record<string, string>;
  body?: string;
  error?: string;
}

interface DryRunAnswer {
  bus: string;
  rule: string;
  ruleSource: "saved" | "request";
  enabled: boolean;
  scanned: {
    events: number;
    firstOffset?: number;
    lastOffset?: number;
    from?: string;
    to?: string;
  };
  matched: number;
  matches: {
    offset: number;
    id: string;
    source: string;
    type: string;
    time?: string;
    receivedAt: string;
    targets: TargetPreview[];
  }[];
  payloadsOmitted: number;
}

const ORDERS = [
  { id: "o-1", total: 50, type: "order.created" },
  { id: "o-2", total: 150, type: "order.created" },
  { id: "o-3", total: 250, type: "order.created" },
  { id: "i-1", total: 900, type: "invoice.sent" },
  { id: "o-4", total: 300, type: "order.cancelled" },
  { id: "o-5", total: 500, type: "order.created" },
];

function fileRules(receiverUrl: string): string {
  return `bus: orders
rules:
  - name: file-audit
    enabled: false
    pattern:
      detail-type: [invoice.sent]
    targets:
      - id: audit
        webhook: {url: "${receiverUrl}/file-audit"}
        format: data
`;
}

describe("rules dry run", () => {
  let receiver: Receiver;
  let service: TestService;
  /** EventId of each published order, by its data id. */
  const eventIds = new Map<string, string>();

  const dryRun = (bus: string, name: string, body?: unknown) =>
    body === undefined
      ? fetch(`${service.url}/v1/buses/${bus}/rules/${name}:dry-run`, { method: "POST" })
      : service.post(`/v1/buses/${bus}/rules/${name}:dry-run`, body);

  /** The 200 answer, held to openapi.yaml. */
  async function answerOf(response: Response): Promise<DryRunAnswer> {
    const text = await response.text();
    assert.equal(response.status, 200, text);
    const answer = JSON.parse(text) as DryRunAnswer;
    assertMatchesContract(
      "POST",
      "/v1/buses/{bus}/rules/{name}:dry-run",
      200,
      response.headers.get("content-type"),
      answer,
    );
    return answer;
  }

  async function errorOf(response: Response, status: number) {
    const text = await response.text();
    assert.equal(response.status, status, text);
    return (JSON.parse(text) as { error: { code: string; message: string } }).error;
  }

  /** Resolves once the dispatcher has passed every event of `bus` (so anything it would send is on its way). */
  async function dispatched(bus: string): Promise<void> {
    const last = await service.storage.log.lastOffset(bus);
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      if (service.storage.deliveries.checkpoint(bus) >= last) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`the dispatcher did not reach offset ${last} of ${bus}`);
  }

  before(async () => {
    receiver = await createReceiver();
    service = await startTestService({ rules: { "orders.yaml": fileRules(receiver.url) } });
    const published = await service.post("/v1/events", {
      Entries: ORDERS.map((o) => ({
        EventBusName: "orders",
        Source: "shop.orders",
        DetailType: o.type,
        Detail: JSON.stringify({ id: o.id, total: o.total }),
      })),
    });
    const result = (await published.json()) as {
      FailedEntryCount: number;
      Entries: { EventId: string }[];
    };
    assert.equal(result.FailedEntryCount, 0);
    ORDERS.forEach((o, i) => eventIds.set(o.id, result.Entries[i]!.EventId));

    // A saved rule that is switched off, so the dispatcher never routes to it.
    const created = await service.post("/v1/buses/orders/rules", {
      name: "big-orders",
      enabled: false,
      pattern: {
        source: ["shop.orders"],
        "detail-type": ["order.created"],
        detail: { total: [{ numeric: [">", 100] }] },
      },
      targets: [
        {
          id: "shaped",
          webhook: { url: `${receiver.url}/shaped` },
          format: "transform",
          transform: '{"orderId": data.id, "amount": data.total}',
        },
        {
          id: "aws",
          webhook: {
            url: `${receiver.url}/aws`,
            headers: { authorization: "Bearer s3cret", "x-tenant": "acme" },
          },
          format: "aws",
        },
        { id: "binary", webhook: { url: `${receiver.url}/binary` }, format: "cloudevents-binary" },
      ],
    });
    assert.equal(created.status, 201, await created.text());
    await dispatched("orders");
  });

  after(async () => {
    await service.close();
    await receiver.close();
    await assertNothingOpen();
  });

  test("rules dry run - a saved rule: what it would have matched and what each target would have received", async () => {
    const answer = await answerOf(await dryRun("orders", "big-orders"));
    assert.equal(answer.bus, "orders");
    assert.equal(answer.rule, "big-orders");
    assert.equal(answer.ruleSource, "saved");
    assert.equal(
      answer.enabled,
      false,
      "a disabled rule is dry-run as if it were on, and says it is off",
    );
    assert.equal(answer.scanned.events, 6);
    assert.equal(answer.scanned.firstOffset, 1);
    assert.equal(answer.scanned.lastOffset, 6);
    assert.ok(answer.scanned.from! <= answer.scanned.to!, JSON.stringify(answer.scanned));
    assert.ok(Date.parse(answer.scanned.from!) > Date.now() - 60_000);
    assert.equal(answer.payloadsOmitted, 0);

    assert.equal(answer.matched, 3);
    assert.deepEqual(
      answer.matches.map((m) => [m.offset, m.id, m.source, m.type]),
      [
        [2, eventIds.get("o-2"), "shop.orders", "order.created"],
        [3, eventIds.get("o-3"), "shop.orders", "order.created"],
        [6, eventIds.get("o-5"), "shop.orders", "order.created"],
      ],
    );
    const o2 = answer.matches[0]!;
    assert.ok(o2.time !== undefined && !Number.isNaN(Date.parse(o2.time)), "the event's time");
    assert.deepEqual(
      o2.targets.map((t) => [t.targetId, t.format, t.outcome]),
      [
        ["shaped", "transform", "payload"],
        ["aws", "aws", "payload"],
        ["binary", "cloudevents-binary", "payload"],
      ],
    );
    const [shaped, aws, binary] = o2.targets as [TargetPreview, TargetPreview, TargetPreview];
    assert.deepEqual(JSON.parse(shaped.body!), { orderId: "o-2", amount: 150 });
    assert.equal(shaped.headers!["content-type"], "application/json");
    assert.equal(shaped.url, `${receiver.url}/shaped`);

    const envelope = JSON.parse(aws.body!) as Obj;
    assert.equal(envelope.id, eventIds.get("o-2"));
    assert.equal(envelope["detail-type"], "order.created");
    assert.deepEqual(envelope.detail, { id: "o-2", total: 150 });
    assert.equal(aws.headers!.authorization, "***", "credentials are not shown");
    assert.equal(aws.headers!["x-tenant"], "acme");

    assert.equal(binary.headers!["ce-id"], eventIds.get("o-2"));
    assert.equal(binary.headers!["ce-type"], "order.created");
    assert.deepEqual(JSON.parse(binary.body!), { id: "o-2", total: 150 });

    // Each target has its own delivery id, the same on every dry run (it is derived, as the real one is).
    const ids = o2.targets.map((t) => t.headers!["webhook-id"]);
    assert.equal(new Set(ids).size, 3);
    const again = await answerOf(await dryRun("orders", "big-orders"));
    assert.deepEqual(
      again.matches[0]!.targets.map((t) => t.headers!["webhook-id"]),
      ids,
    );
  });

  test("rules dry run - a proposed rule in the body, over the last N events, with bus vocabulary", async () => {
    const answer = await answerOf(
      await dryRun("orders", "what-if", {
        limit: 3,
        rule: {
          pattern: { detail: { total: [{ numeric: [">=", 300] }] } },
          targets: [
            { id: "data", webhook: { url: `${receiver.url}/data` }, format: "data" },
            {
              id: "broken",
              webhook: { url: `${receiver.url}/broken` },
              transform: '$error("no thanks for " & data.id)',
            },
          ],
        },
      }),
    );
    assert.equal(answer.ruleSource, "request");
    assert.equal(answer.rule, "what-if");
    assert.equal(answer.enabled, true);
    assert.deepEqual(
      [answer.scanned.events, answer.scanned.firstOffset, answer.scanned.lastOffset],
      [3, 4, 6],
      "only the last 3 events were scanned",
    );
    assert.deepEqual(
      answer.matches.map((m) => m.id),
      [eventIds.get("i-1"), eventIds.get("o-4"), eventIds.get("o-5")],
    );
    const [data, broken] = answer.matches[1]!.targets as [TargetPreview, TargetPreview];
    assert.equal(data.outcome, "payload");
    assert.deepEqual(JSON.parse(data.body!), { id: "o-4", total: 300 });
    // A transform that fails is reported on its target, as the dispatcher would dead-letter it.
    assert.equal(broken.outcome, "error");
    assert.equal(broken.format, "transform");
    assert.match(broken.error!, /^transform failed: .*no thanks for o-4/);
    assert.equal(broken.body, undefined);

    const saved = await service.get("/v1/buses/orders/rules/what-if");
    assert.equal((await errorOf(saved, 404)).code, "RuleNotFound", "a proposed rule is not saved");
  });

  test("rules dry run - a rule from a rule file, by name", async () => {
    const answer = await answerOf(await dryRun("orders", "file-audit", { limit: 10 }));
    assert.equal(answer.ruleSource, "saved");
    assert.equal(answer.scanned.events, 6, "a limit above the log's size scans what there is");
    assert.deepEqual(
      answer.matches.map((m) => [m.id, m.targets[0]!.body]),
      [[eventIds.get("i-1"), JSON.stringify({ id: "i-1", total: 900 })]],
    );
  });

  test("rules dry run - a bus without events scans nothing", async () => {
    const created = await service.post("/v1/buses", { name: "quiet" });
    assert.equal(created.status, 201, await created.text());
    const answer = await answerOf(
      await dryRun("quiet", "anything", { rule: { pattern: { source: ["x"] } } }),
    );
    assert.deepEqual(answer.scanned, { events: 0 });
    assert.deepEqual([answer.matched, answer.matches], [0, []]);
  });

  test("rules dry run - unknown bus, unknown rule, bad limit, bad rule: clear errors", async () => {
    const noBus = await errorOf(await dryRun("nope", "big-orders"), 404);
    assert.equal(noBus.code, "BusNotFound");
    const noRule = await errorOf(await dryRun("orders", "nothing-here"), 404);
    assert.equal(noRule.code, "RuleNotFound");
    assert.match(noRule.message, /nothing-here/);
    const emptyBody = await errorOf(await dryRun("orders", "nothing-here", {}), 404);
    assert.equal(emptyBody.code, "RuleNotFound", "a body without a rule means the saved rule");

    for (const limit of [0, 10_001, 2.5, "5"]) {
      const error = await errorOf(await dryRun("orders", "big-orders", { limit }), 400);
      assert.equal(error.code, "ValidationError");
      assert.match(error.message, /^body\.limit: .*from 1 to 10000, got /, String(limit));
    }
    const unknownField = await errorOf(await dryRun("orders", "big-orders", { limt: 5 }), 400);
    assert.match(unknownField.message, /unknown field "limt"/);

    // The rule is checked as PUT checks it: same codes, same pointers.
    const badPattern = { pattern: { source: "shop.orders" } };
    const viaDryRun = await errorOf(await dryRun("orders", "what-if", { rule: badPattern }), 400);
    const viaPut = await errorOf(
      await fetch(`${service.url}/v1/buses/orders/rules/big-orders`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(badPattern),
      }),
      400,
    );
    assert.equal(viaDryRun.code, "InvalidEventPattern");
    assert.deepEqual(viaDryRun, {
      ...viaPut,
      requestId: (viaDryRun as { requestId?: string }).requestId,
    });
    const badTransform = await errorOf(
      await dryRun("orders", "what-if", {
        rule: {
          pattern: { source: ["x"] },
          targets: [{ id: "t", webhook: { url: "http://x/" }, transform: "(" }],
        },
      }),
      400,
    );
    assert.equal(badTransform.code, "InvalidTransform");
    const otherName = await errorOf(
      await dryRun("orders", "what-if", { rule: { name: "else", pattern: { source: ["x"] } } }),
      400,
    );
    assert.match(otherName.message, /body\.rule\.name: "else" differs from the rule in the path/);
    const notAnObject = await errorOf(await dryRun("orders", "what-if", { rule: [1] }), 400);
    assert.match(notAnObject.message, /body\.rule: must be a rule definition/);

    const get = await fetch(`${service.url}/v1/buses/orders/rules/big-orders:dry-run`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    await get.body?.cancel();
  });

  test("rules dry run - nothing was delivered; the same targets do receive once a rule is really on", async () => {
    await dispatched("orders");
    assert.deepEqual(receiver.requests, [], "a dry run sends nothing");

    // The control: the receiver and the targets work, so the silence above means something.
    const enabled = await service.post("/v1/buses/orders/rules/big-orders:enable", undefined);
    assert.equal(enabled.status, 200, await enabled.text());
    const published = await service.post("/v1/events", {
      Entries: [
        {
          EventBusName: "orders",
          Source: "shop.orders",
          DetailType: "order.created",
          Detail: '{"id":"o-6","total":700}',
        },
      ],
    });
    const eventId = ((await published.json()) as { Entries: { EventId: string }[] }).Entries[0]!
      .EventId;
    const received = await receiver.waitFor(3, 10_000);
    await dispatched("orders");
    assert.equal(receiver.requests.length, 3);
    assert.deepEqual(received.map((r) => r.path).sort(), ["/aws", "/binary", "/shaped"]);
    assert.ok(
      received.every((r) => r.body.includes("o-6") || r.headers["ce-id"] === eventId),
      "only the new event was delivered, none of those dry-run before",
    );
    assert.deepEqual(JSON.parse(receiver.requestsTo("/shaped")[0]!.body), {
      orderId: "o-6",
      amount: 700,
    });
  });
});
