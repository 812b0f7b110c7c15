/**
 * The HTML billing report, opened in a real browser: a service with real usage (events
 * published over HTTP, pushed to a receiver, and counts of earlier days), the report written
 * by the real CLI (`relaybus billing --html`), then rendered by headless Chromium (Debian's
 * `chromium`, driven by playwright-core). It checks that the chart has a bar per meter and
 * day, that the totals shown are the records' totals, that the page asks for nothing over
 * the network, and writes a screenshot to test-results/billing-report.png.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, test } from "node:test";
import { chromium, type Browser } from "playwright-core";
import type { BillingStatementView } from "../../src/metering/billing-view.js";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

const CHROMIUM = "/usr/bin/chromium";
const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium)`;
const RESULTS_DIR = new URL("../../test-results/", import.meta.url).pathname;
const DAY_MS = 86_400_000;

let receiver: Receiver;
let service: TestService;
let browser: Browser | undefined;

before(async () => {
  if (SKIP !== false) return;
  receiver = await createReceiver();
  service = await startTestService({
    rules: {
      "orders.yaml": `bus: orders
rules:
  - name: all-orders
    pattern: {source: [shop]}
    targets:
      - id: warehouse
        webhook: {url: "${receiver.url}/warehouse"}
`,
    },
    // Prices high enough that a few events cost something visible.
    config: {
      billing: {
        prices: { publish: "120000", push: "30000.5" },
        tenants: { orders: "shop <&> co" },
      },
    },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox needs user namespaces, which containers running as root lack.
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
});

after(async () => {
  await browser?.close();
  await service?.close();
  await receiver?.close();
});

/** Runs `relaybus billing` (the real CLI, through tsx) against the service. */
function runCli(args: string[]): Promise<string> {
  const entry = new URL("../../src/cli/run.ts", import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", entry, "billing", "--url", service.url, ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`relaybus billing exited ${code}:\n${output}`)),
    );
  });
}

test(
  "billing report - renders offline in Chromium with a bar per meter and day and the records' totals",
  { skip: SKIP },
  async () => {
    // Real publishes and pushes: sizes of 1, 1, 2 and 4 units.
    const sizes = [10, 65_000, 70_000, 200_000];
    const answer = await service.post("/v1/events", {
      Entries: sizes.map((size, i) => ({
        Source: "shop",
        DetailType: "order.created",
        EventBusName: "orders",
        Detail: JSON.stringify({ id: `o-${i}`, pad: "x".repeat(size) }),
      })),
    });
    assert.equal(((await answer.json()) as { FailedEntryCount: number }).FailedEntryCount, 0);
    await receiver.waitFor(sizes.length, 10_000, "/warehouse");
    // Earlier days of this month, so the chart has more than one bar per meter.
    const now = Date.now();
    const monthStart = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
    const earlier = [monthStart, monthStart + 2 * DAY_MS].filter((day) => day + DAY_MS <= now);
    service.storage.usage.addCounts(
      earlier.flatMap((day, i) => [
        {
          hourMs: day + 3_600_000,
          meter: "publish" as const,
          bus: "orders",
          quantity: 5 + i,
          units: 9 + i,
        },
        {
          hourMs: day + 3_600_000,
          meter: "push" as const,
          bus: "orders",
          rule: "all-orders",
          target: "warehouse",
          quantity: 3,
          units: 4,
        },
      ]),
    );

    const period = new Date(now).toISOString().slice(0, 7);
    // The deliveries' attempts are counted when recorded: wait until all four are.
    let statement: BillingStatementView;
    for (const deadline = Date.now() + 10_000; ;) {
      statement = (await (
        await service.get(`/v1/billing/periods/${period}/records`)
      ).json()) as BillingStatementView;
      const pushed = statement.totals.byMeter.find((m) => m.meter === "push")?.quantity ?? 0;
      if (pushed >= sizes.length + 3 * earlier.length) break;
      assert.ok(Date.now() < deadline, `push attempts counted: ${pushed}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const publish = statement.totals.byMeter.find((m) => m.meter === "publish");
    assert.equal(
      publish?.units,
      1 + 1 + 2 + 4 + earlier.reduce((sum, _d, i) => sum + 9 + i, 0),
      "units = sum of ceil(size/65536)",
    );

    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = join(RESULTS_DIR, "billing-report.html");
    const printed = await runCli(["--period", period, "--html", file]);
    assert.match(
      printed,
      new RegExp(`wrote .*billing-report\\.html: period ${period} \\(preview\\)`),
    );
    const html = readFileSync(file, "utf8");
    assert.ok(
      !/<script|<link|@import|url\(/i.test(html),
      "no script, stylesheet, import or url(): the page is self-contained",
    );
    assert.ok(
      html.includes("shop &lt;&amp;&gt; co") && !html.includes("shop <&> co"),
      "the tenant's name is escaped",
    );

    const page = await browser!.newPage({ viewport: { width: 1100, height: 900 } });
    const requested: string[] = [];
    page.on("request", (request) => requested.push(request.url()));
    await page.goto(pathToFileURL(file).href);
    assert.deepEqual(requested, [pathToFileURL(file).href], "the page loads nothing but itself");

    // Totals shown = the records' totals (the API's numbers, to the minor unit).
    assert.equal((await page.textContent("[data-total]"))?.trim(), statement.totals.total);
    for (const meter of statement.totals.byMeter) {
      assert.equal(
        (await page.textContent(`[data-meter-total="${meter.meter}"]`))?.trim(),
        meter.amount,
        meter.meter,
      );
    }
    assert.notEqual(statement.totals.total, "0.00");

    // One chart per meter, one bar per day of the month, each bar's value the day's units.
    const days = Math.round((Date.parse(statement.to) - Date.parse(statement.from)) / DAY_MS);
    const meters = statement.totals.byMeter.map((m) => m.meter).sort();
    assert.deepEqual(
      await page.$$eval("svg.chart", (svgs) =>
        svgs.map((s) => s.getAttribute("data-meter")).sort(),
      ),
      meters,
    );
    for (const meter of meters) {
      const bars = await page.$$eval(`svg.chart[data-meter="${meter}"] rect.bar`, (rects) =>
        rects.map((r) => ({
          date: r.getAttribute("data-date"),
          value: Number(r.getAttribute("data-value")),
          drawnHeight: r.getBoundingClientRect().height,
        })),
      );
      assert.equal(bars.length, days, `${meter}: a bar per day`);
      const expected = new Map(
        statement.dailyUsage.filter((d) => d.meter === meter).map((d) => [d.date, d.units]),
      );
      assert.ok(expected.size >= 1);
      for (const bar of bars) {
        assert.equal(bar.value, expected.get(bar.date!) ?? 0, `${meter} ${bar.date}`);
        assert.equal(
          bar.drawnHeight > 0,
          bar.value > 0,
          `${meter} ${bar.date}: drawn when it has usage`,
        );
      }
    }
    // The top resources table leads with the largest amount.
    const topFirst = await page.textContent("table.top tbody tr:first-child td:nth-child(2)");
    assert.equal(topFirst, statement.totals.byResource[0]?.resource);

    const screenshot = join(RESULTS_DIR, "billing-report.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(
      readFileSync(screenshot)
        .subarray(0, 8)
        .equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
      "a PNG",
    );
    await page.close();
  },
);
