/**
 * `relaybus replay` as a real child process (through tsx) against a real Relaybus and a real
 * receiver on loopback. The child runs asynchronously: the server lives in this process.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { runCli, type CliRun } from "../helpers/run-cli.js";
import { startTestService, type TestService } from "../helpers/service.js";



describe("relaybus replay", () => {
  let receiver: Receiver;
  let service: TestService;

  function replay(...args: string[]): Promise<CliRun> {
    return runCli(["replay", ...args], { RELAYBUS_URL: service.url });
  }

  before(async () => {
    receiver = await createReceiver();
    service = await startTestService({
      rules: {
        "orders.yaml": `bus: orders
rules:
  - name: ship
    pattern: {source: [shop.orders]}
    targets:
      - id: warehouse
        webhook: {url: "${receiver.url}/warehouse"}
        format: data
      - id: audit
        webhook: {url: "${receiver.url}/audit"}
        format: data
`,
      },
    });
    assert.equal(
      (await service.post("/v1/archives", { name: "orders-all", bus: "orders" })).status,
      201,
    );
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
    await receiver.waitFor(3, 10_000, "/audit");
    for (
      const deadline = Date.now() + 10_000;
      service.storage.archives.get("orders-all")!.eventCount < 3;
    ) {
      assert.ok(Date.now() < deadline, "the archive has the three events");
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  after(async () => {
    await service.close();
    await receiver.close();
  });

  test("relaybus replay start - replays an archive's window to one target and waits for the end", async () => {
    const run = await replay(
      "start",
      "--name",
      "cli-1",
      "--archive",
      "orders-all",
      "--from",
      "1h",
      "--to",
      new Date(Date.now() + 60_000).toISOString(),
      "--rule",
      "ship",
      "--target",
      "warehouse",
      "--interval-ms",
      "20",
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /replay cli-1 completed: 3 of 3 events replayed, 3 deliveries/);
    const arrived = await receiver.waitFor(6, 10_000, "/warehouse");
    const replayed = arrived.filter((r) => r.headers["relaybus-replay"] === "cli-1");
    assert.deepEqual(
      replayed.map((r) => r.body),
      ['{"id":"o-1"}', '{"id":"o-2"}', '{"id":"o-3"}'],
    );
    assert.equal(
      receiver.requestsTo("/audit").filter((r) => r.headers["relaybus-replay"] !== undefined)
        .length,
      0,
    );
  });

  test("relaybus replay status, list and cancel - show a replay, list them, and say when one has ended", async () => {
    const started = await replay(
      "start",
      "--name",
      "cli-2",
      "--bus",
      "orders",
      "--from",
      "0",
      "--to",
      String(Date.now() + 60_000),
      "--no-wait",
    );
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /replay cli-2 (running|completed)/);

    for (
      const deadline = Date.now() + 10_000;
      service.storage.replays.get("cli-2")?.state !== "completed";
    ) {
      assert.ok(Date.now() < deadline, "cli-2 completes");
      await new Promise((r) => setTimeout(r, 20));
    }
    const status = await replay("status", "cli-2");
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /replay cli-2: completed/);
    assert.match(status.stdout, /source: +log of bus orders/);
    assert.match(status.stdout, /progress: +3 of 3 events \(100%\)/);
    assert.match(status.stdout, /deliveries: +6 /);

    const json = await replay("status", "cli-2", "--json");
    assert.equal((JSON.parse(json.stdout) as { replayed: number }).replayed, 3);

    const list = await replay("list");
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME +STATE +PROGRESS/);
    assert.match(
      list.stdout,
      /cli-1 +completed +3\/3 \(100%\) +archive:orders-all +orders\/ship\/warehouse/,
    );
    assert.match(list.stdout, /cli-2 +completed +3\/3 \(100%\) +bus:orders +orders /);

    const cancel = await replay("cancel", "cli-2");
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /replay cli-2 had already ended: completed/);
  });

  test("relaybus replay - refuses bad flags and reports the server's errors", async () => {
    const both = await replay(
      "start",
      "--name",
      "x",
      "--archive",
      "a",
      "--bus",
      "b",
      "--from",
      "0",
      "--to",
      "1",
    );
    assert.equal(both.code, 1);
    assert.match(both.stderr, /either --archive <name> or --bus <name>/);
    const orphanTarget = await replay(
      "start",
      "--name",
      "x",
      "--bus",
      "orders",
      "--from",
      "0",
      "--to",
      "1",
      "--target",
      "t",
    );
    assert.equal(orphanTarget.code, 1);
    assert.match(orphanTarget.stderr, /--target needs --rule/);
    const badTime = await replay(
      "start",
      "--name",
      "x",
      "--bus",
      "orders",
      "--from",
      "last tuesday",
      "--to",
      "1",
    );
    assert.equal(badTime.code, 1);
    assert.match(badTime.stderr, /--from: expected a duration/);
    const unknownArchive = await replay(
      "start",
      "--name",
      "x",
      "--archive",
      "nope",
      "--from",
      "0",
      "--to",
      "1",
    );
    assert.equal(unknownArchive.code, 1);
    assert.match(unknownArchive.stderr, /ArchiveNotFound: archive "nope" does not exist/);
    const unknownReplay = await replay("status", "nope");
    assert.equal(unknownReplay.code, 1);
    assert.match(unknownReplay.stderr, /ReplayNotFound/);
    const missingFlag = await replay("start", "--name", "x", "--bus", "orders");
    assert.equal(missingFlag.code, 1);
    assert.match(missingFlag.stderr, /required option '--from <when>'/);
  });
});
