/**
 * Crash safety of the meters, for real: a Relaybus process is SIGKILLed while events pour in
 * and usage reports make the publish meter and the rollup commit, then started again. The
 * publish usage must equal the events in the log exactly, hourly and daily: nothing counted
 * twice, nothing missed.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { freePort, spawnRelaybus, type RelaybusProcess } from "../helpers/relaybus-process.js";

interface UsageAnswer {
  rows: { start: string; meter: string; quantity: number; units: number }[];
}

async function publishUsage(url: string, granularity: "hour" | "day"): Promise<{ quantity: number; units: number }> {
  const response = await fetch(`${url}/v1/usage?groupBy=meter&granularity=${granularity}&from=2000-01-01`);
  assert.equal(response.status, 200);
  const { rows } = (await response.json()) as UsageAnswer;
  return rows
    .filter((r) => r.meter === "publish")
    .reduce((t, r) => ({ quantity: t.quantity + r.quantity, units: t.units + r.units }), { quantity: 0, units: 0 });
}

test("metering crash - killed while counting, restarted: publish usage equals the log, to the event and the unit", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-metering-crash-"));
  const rulesDir = join(dir, "rules");
  mkdirSync(rulesDir);
  const dataDir = join(dir, "data");
  let server: RelaybusProcess | undefined;
  t.after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  server = await spawnRelaybus({ port, dataDir, rulesDir });
  const url = server.url;

  // Two sizes: one unit and two units each.
  const entries = Array.from({ length: 50 }, (_, n) => ({
    Source: "crash",
    DetailType: "t",
    Detail: JSON.stringify({ n, pad: n % 10 === 0 ? "x".repeat(70_000) : "" }),
  }));
  let acked = 0;
  let stop = false;
  const producer = async () => {
    while (!stop) {
      try {
        const response = await fetch(`${url}/v1/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ Entries: entries }),
        });
        if (response.ok) acked += entries.length;
      } catch {
        return; // the server is gone
      }
    }
  };
  const reporter = async () => {
    while (!stop) {
      try {
        await fetch(`${url}/v1/usage?granularity=day`); // the meter and the rollup commit
      } catch {
        return;
      }
    }
  };
  const running = [producer(), producer(), producer(), reporter()];
  for (const deadline = Date.now() + 10_000; acked < 3_000 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await server.kill();
  stop = true;
  await Promise.all(running);
  assert.ok(acked >= 1_000, `events were published before the kill (${acked})`);

  server = await spawnRelaybus({ port, dataDir, rulesDir });
  const bus = (await (await fetch(`${url}/v1/buses/default`)).json()) as { lastOffset: number };
  assert.ok(bus.lastOffset >= acked, "every acked event is in the log");
  // Each request is 50 entries in the same order: 5 of them two units, 45 one unit.
  assert.equal(bus.lastOffset % 50, 0);
  const expected = { quantity: bus.lastOffset, units: bus.lastOffset + bus.lastOffset / 10 };
  assert.deepEqual(await publishUsage(url, "hour"), expected, "hourly");
  assert.deepEqual(await publishUsage(url, "day"), expected, "daily");
  assert.deepEqual(await publishUsage(url, "day"), expected, "daily, asked again");
});
