/**
 * `relaybus dlq` as a real child process (through tsx) against a real Relaybus and a real
 * receiver on loopback. The child is run asynchronously: the server lives in this process,
 * and a synchronous spawn would stop it from answering.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { DeadLetter } from "../../src/log/log-engine.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { runCli, type CliRun } from "../helpers/run-cli.js";
import { startTestService, type TestService } from "../helpers/service.js";

const RETRY = "{maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10}";


function rules(receiverUrl: string): string {
  return `bus: orders
rules:
  - name: ship
    pattern: {source: [shop.orders]}
    targets:
      - id: warehouse
        webhook: {url: "${receiverUrl}/warehouse"}
        format: transform
        transform: '{"order": data.id}'
        retry: ${RETRY}
      - id: audit
        webhook: {url: "${receiverUrl}/audit"}
        format: data
        retry: ${RETRY}
`;
}

describe("relaybus dlq", () => {
  let receiver: Receiver;
  let service: TestService;

  /** Runs `relaybus dlq ...args` against the service, with RELAYBUS_URL pointing at it. */
  function dlq(...args: string[]): Promise<CliRun> {
    return runCli(["dlq", ...args], { RELAYBUS_URL: service.url });
  }

  async function deadLetters(query = ""): Promise<DeadLetter[]> {
    const response = await service.get(`/v1/dead-letters?limit=1000${query}`);
    return ((await response.json()) as { deadLetters: DeadLetter[] }).deadLetters;
  }

  before(async () => {
    receiver = await createReceiver();
    receiver.always("/warehouse", { status: 500 });
    receiver.always("/audit", { status: 400, body: "no thanks" });
    service = await startTestService({ rules: { "orders.yaml": rules(receiver.url) } });
    const published = await service.post("/v1/events", {
      Entries: ["o-1", "o-2", "o-3"].map((id) => ({
        EventBusName: "orders",
        Source: "shop.orders",
        DetailType: "created",
        Detail: JSON.stringify({ id }),
      })),
    });
    assert.equal(published.status, 200);
    await published.body?.cancel();
    for (const deadline = Date.now() + 10_000; (await deadLetters()).length < 6;) {
      assert.ok(Date.now() < deadline, "six dead letters");
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  test("cli dlq - list prints a table, filtered by bus, target, reason and since", async () => {
    // Read-only runs, side by side: each child spends seconds starting tsx.
    const [all, audit, reason, json, bad] = await Promise.all([
      dlq("list"),
      dlq("list", "--bus", "orders", "--target", "audit"),
      dlq("list", "--reason", "http 500", "--since", "1h", "--limit", "2"),
      dlq("list", "--json", "--target", "warehouse"),
      dlq("list", "--since", "yesterday"),
    ]);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trim().split("\n");
    assert.match(lines[0]!, /^ID\s+DEAD AT\s+BUS\s+RULE\s+TARGET\s+ATTEMPTS\s+REASON$/);
    for (const letter of await deadLetters()) assert.ok(all.stdout.includes(letter.id), letter.id);
    assert.match(all.stdout, /\n6 dead letter\(s\)\n$/);

    assert.equal(audit.code, 0, audit.stderr);
    const rows = audit.stdout.split("\n").filter((l) => /^[0-9a-f]{8}-/.test(l));
    assert.equal(rows.length, 3);
    assert.ok(
      rows.every((row) =>
        /\sorders\s+ship\s+audit\s+1\s+permanent failure on attempt 1: HTTP 400/.test(row),
      ),
      rows.join("\n"),
    );

    assert.equal(reason.code, 0, reason.stderr);
    assert.equal(reason.stdout.split("\n").filter((l) => /^[0-9a-f]{8}-/.test(l)).length, 2);
    assert.match(reason.stdout, /2 dead letter\(s\) \(the limit: there may be more\)/);

    assert.equal((JSON.parse(json.stdout) as DeadLetter[]).length, 3);

    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--since: expected a duration such as 2h or 7d/);
  });

  test("cli dlq - show prints where a dead letter came from, its payload and every attempt", async () => {
    const [letter] = await deadLetters("&target=warehouse");
    assert.ok(letter !== undefined);
    const [shown, missing] = await Promise.all([
      dlq("show", letter.id),
      dlq("show", "no-such-letter"),
    ]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^dead letter ${letter.id}\n`));
    assert.match(shown.stdout, /\n {2}target: {4}warehouse\n/);
    assert.match(
      shown.stdout,
      /\n {2}reason: {4}gave up after 2 attempts \(maxAttempts 2\): HTTP 500\n/,
    );
    assert.match(shown.stdout, new RegExp(`\nrequest: POST ${receiver.url}/warehouse `));
    assert.match(shown.stdout, /\n {2}webhook-id: /);
    const order = (JSON.parse(letter.request.body) as { order: string }).order;
    assert.ok(shown.stdout.includes(`payload:\n  {\n    "order": "${order}"\n  }\n`), shown.stdout);
    assert.match(
      shown.stdout,
      /\nattempts \(2\):\n {2}#\s+STARTED\s+STATUS\s+OUTCOME\s+DURATION\s+ERROR\n {2}1\s+\S+\s+500\s+retryable\s+\d+ ms\s+HTTP 500\n {2}2\s/,
    );

    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^DeadLetterNotFound: dead letter "no-such-letter" does not exist/,
    );
  });

  test("cli dlq - redrive one by id: the receiver gets it with its webhook-id; unknown ids fail the command", async () => {
    receiver.always("/warehouse", { status: 200 });
    const [letter] = await deadLetters("&target=warehouse");
    assert.ok(letter !== undefined);
    const seen = receiver.requestsTo("/warehouse").length;
    const run = await dlq("redrive", letter.id);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "redriven 1, skipped 0 (mode original)\n");
    const [arrived] = (await receiver.waitFor(seen + 1, 10_000, "/warehouse")).slice(seen);
    assert.equal(arrived?.headers["webhook-id"], letter.id);
    assert.equal((await deadLetters()).length, 5);

    const [unknown, nothing, both] = await Promise.all([
      dlq("redrive", "no-such-letter"),
      dlq("redrive"),
      dlq("redrive", letter.id, "--all"),
    ]);
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stdout,
      "redriven 0, skipped 0 (mode original)\nnot found: no-such-letter\n",
    );
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /name dead letter ids, give filters .* or --all/);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /not several/);
  });

  test("cli dlq - purge asks for --yes without a terminal, then purges a filter", async () => {
    const refused = await dlq("purge", "--target", "audit");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not confirmed; nothing purged \(pass --yes/);
    assert.equal((await deadLetters("&target=audit")).length, 3);

    const purged = await dlq("purge", "--target", "audit", "--yes");
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(purged.stdout, "purged 3\n");
    assert.deepEqual(await deadLetters("&target=audit"), []);
  });

  test("cli dlq - redrive --all in current mode sends what is left; then the list is empty", async () => {
    const left = await deadLetters();
    assert.equal(left.length, 2);
    const seen = receiver.requestsTo("/warehouse").length;
    const run = await dlq("redrive", "--all", "--mode", "current");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "redriven 2, skipped 0 (mode current)\n");
    const arrived = (await receiver.waitFor(seen + 2, 10_000, "/warehouse")).slice(seen);
    assert.deepEqual(
      arrived.map((r) => String(r.headers["webhook-id"])).sort(),
      left.map((l) => l.id).sort(),
    );
    const empty = await dlq("list");
    assert.equal(empty.stdout, "no dead letters\n");
  });
});
