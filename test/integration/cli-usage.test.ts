/**
 * `relaybus usage` as a real child process (through tsx) against a real Relaybus. The child
 * runs asynchronously: the server lives in this process.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli, type CliRun } from "../helpers/run-cli.js";
import { startTestService, type TestService } from "../helpers/service.js";



describe("relaybus usage", () => {
  let service: TestService;

  function usage(...args: string[]): Promise<CliRun> {
    return runCli(["usage", ...args], { RELAYBUS_URL: service.url });
  }

  before(async () => {
    service = await startTestService({ rules: { "orders.yaml": "bus: orders\n" } });
    const published = await service.post("/v1/events", {
      Entries: [
        ...Array.from({ length: 3 }, () => ({ EventBusName: "orders", Source: "shop", DetailType: "t", Detail: "{}" })),
        { Source: "shop", DetailType: "t", Detail: JSON.stringify({ pad: "x".repeat(70_000) }) },
      ],
    });
    assert.equal(published.status, 200);
    await published.body?.cancel();
  });
  after(async () => {
    await service.close();
  });

  test("cli usage - prints a table per hour with the buses and meters asked for, and the totals", async () => {
    const run = await usage("--group-by", "bus,meter");
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split("\n");
    assert.match(lines[0] ?? "", /^START\s+BUS\s+METER\s+QUANTITY\s+UNITS$/);
    assert.ok(lines.some((l) => /Z\s+orders\s+publish\s+3\s+3$/.test(l)), run.stdout);
    assert.ok(lines.some((l) => /Z\s+default\s+publish\s+1\s+2$/.test(l)), run.stdout);
    assert.match(run.stdout, /totals:\nMETER\s+QUANTITY\s+UNITS\npublish\s+4\s+5/);
  });

  test("cli usage - --granularity day reads the daily rollup; --csv prints CSV", async () => {
    const day = await usage("--granularity", "day", "--from", "2d");
    assert.equal(day.code, 0, day.stderr);
    assert.match(day.stdout, /T00:00:00Z\s+publish\s+4\s+5/);
    const csv = await usage("--csv", "--group-by", "bus");
    assert.equal(csv.code, 0, csv.stderr);
    const rows = csv.stdout.trim().split("\r\n");
    assert.equal(rows[0], "start,bus,quantity,units");
    assert.ok(rows.includes(`${rows.find((r) => r.includes(",orders,"))!.split(",")[0]},orders,3,3`));
    assert.equal(rows.length, 3);
  });

  test("cli usage - a bad parameter fails with the server's message and exit status 1", async () => {
    const run = await usage("--granularity", "week");
    assert.equal(run.code, 1);
    assert.match(run.stderr, /ValidationError: granularity: expected hour or day, got "week"/);
    const when = await usage("--from", "last tuesday");
    assert.equal(when.code, 1);
    assert.match(when.stderr, /--from: expected a duration ago/);
  });
});
