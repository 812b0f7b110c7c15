/**
 * `relaybus billing` against a real service: the line items and totals as a table, CSV,
 * the periods, closing a month, and a refusal with its code.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";
import { startTestService, type TestService } from "../helpers/service.js";

let service: TestService;
const now = new Date();
const thisMonth = now.toISOString().slice(0, 7);
const lastMonthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1);
const lastMonth = new Date(lastMonthStart).toISOString().slice(0, 7);

before(async () => {
  service = await startTestService({ config: { billing: { tenants: { orders: "shop" } } } });
  service.storage.usage.addCounts([
    {
      hourMs: lastMonthStart + 3_600_000,
      meter: "publish",
      bus: "orders",
      quantity: 2_000_000,
      units: 2_500_000,
    },
    {
      hourMs: lastMonthStart + 7_200_000,
      meter: "push",
      bus: "orders",
      rule: "r",
      target: "t",
      quantity: 1_000_000,
      units: 1_000_000,
    },
    {
      hourMs: Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1),
      meter: "publish",
      bus: "default",
      quantity: 3,
      units: 3,
    },
  ]);
});
after(() => service.close());

function billing(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const entry = new URL("../../src/cli/run.ts", import.meta.url).pathname;
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", entry, "billing", "--url", service.url, ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.once("exit", (code) => resolve({ code, out, err }));
  });
}

test("cli billing - prints a period's line items and totals as tables", async () => {
  const { code, out } = await billing(["--period", lastMonth]);
  assert.equal(code, 0);
  assert.match(out, new RegExp(`^billing period ${lastMonth}: open \\(preview`, "m"));
  // 2,500,000 units × 5.64 / 10^6 = 14.10; 1,000,000 × 1.29 / 10^6 = 1.29.
  assert.match(
    out,
    /^1\s+publish\s+bus orders\s+shop\s+2000000\s+2500000\s+5\.64 per-million-units\s+14\.10$/m,
  );
  assert.match(
    out,
    /^2\s+push\s+target orders\/r\/t\s+shop\s+1000000\s+1000000\s+1\.29 per-million-units\s+1\.29$/m,
  );
  assert.match(out, /^shop\s+15\.39$/m);
  assert.match(out, /^TOTAL 15\.39 CNY$/m);
});

test("cli billing - CSV, the periods, closing a month, and a refusal", async () => {
  const csv = await billing(["--period", lastMonth, "--csv"]);
  assert.equal(csv.code, 0);
  const rows = csv.out.trimEnd().split("\r\n");
  assert.equal(
    rows[0],
    "period,line,usage_period,resource_kind,resource,bus,rule,target,stream,tenant,meter,quantity,units,unit_price,price_basis,amount,currency",
  );
  assert.equal(
    rows[1],
    `${lastMonth},1,${lastMonth},bus,orders,orders,,,,shop,publish,2000000,2500000,5.64,per-million-units,14.10,CNY`,
  );

  const closed = await billing(["--period", lastMonth, "--close"]);
  assert.equal(closed.code, 0, closed.err);
  assert.equal(closed.out.trim(), `period ${lastMonth} closed: 2 line items, total 15.39 CNY`);
  const again = await billing(["--period", lastMonth, "--close"]);
  assert.match(again.out, new RegExp(`^period ${lastMonth} was closed already`));

  const list = await billing(["--list"]);
  assert.equal(list.code, 0);
  assert.match(
    list.out,
    new RegExp(`^${thisMonth}\\s+open \\(preview\\)\\s+1\\s+0\\.00\\s+CNY$`, "m"),
  );
  assert.match(
    list.out,
    new RegExp(`^${lastMonth}\\s+closed\\s+2\\s+15\\.39\\s+CNY\\s+\\d{4}-`, "m"),
  );

  const refused = await billing(["--period", thisMonth, "--close"]);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /^BillingPeriodNotEnded: period \d{4}-\d{2} has not ended/);
});
