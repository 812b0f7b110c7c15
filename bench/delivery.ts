/**
 * End-to-end benchmark: events published, matched by a rule, and delivered to a webhook.
 *
 *     npm run bench:delivery [-- --events 50000 --connections 64]
 *
 * Starts `relaybus serve` (compiled, as `npm run bench:*` runs; see bench-modules.ts) with
 * one rule sending every event to a local receiver in this process, publishes `--events` single CloudEvents over `--connections`
 * keep-alive connections, and reports ingest rate while delivering, how long until the last
 * event reached the receiver, and delivered events/s. Client, server and receiver share
 * this machine's cores.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBenchServer } from "./bench-server.js";
import { Agent, request } from "undici";

const { values: flags } = parseArgs({
  options: {
    events: { type: "string", default: "50000" },
    connections: { type: "string", default: "64" },
  },
});
const total = Number(flags.events);
const connections = Number(flags.connections);

const delivered = new Set<string>();
let deliveries = 0;
let lastDeliveryAt = 0;
const receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    deliveries++;
    delivered.add((JSON.parse(Buffer.concat(chunks).toString()) as { id: string }).id);
    lastDeliveryAt = performance.now();
    res.writeHead(200).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
const receiverPort = (receiver.address() as AddressInfo).port;

const dir = mkdtempSync(join(tmpdir(), "relaybus-bench-"));
mkdirSync(join(dir, "rules"));
writeFileSync(
  join(dir, "rules", "bench.yaml"),
  `bus: default
rules:
  - name: all
    pattern: {source: [bench.orders]}
    targets:
      - id: hook
        webhook: {url: "http://127.0.0.1:${receiverPort}/hook"}
        format: cloudevents-structured
`,
);
// The receiver is on this machine: loopback targets must be allowed (they are refused by default).
const server = await startBenchServer(dir, { RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "true" });
const port = server.port;
const agent = new Agent({ connections, pipelining: 1 });
try {
  const data = { orderId: "o-12345", customer: "c-678", total: 129.5, note: "x".repeat(800) };
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < total) {
        const id = `e-${next++}`;
        const response = await request(`http://127.0.0.1:${port}/v1/buses/default/cloudevents`, {
          method: "POST",
          dispatcher: agent,
          headers: { "content-type": "application/cloudevents+json" },
          body: JSON.stringify({ specversion: "1.0", id, source: "bench.orders", type: "order.created", data }),
        });
        if (response.statusCode !== 200) failed++;
        await response.body.dump();
      }
    }),
  );
  const ingestMs = performance.now() - started;
  const deadline = Date.now() + 120_000;
  while (delivered.size < total - failed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const doneMs = lastDeliveryAt - started;
  console.log(`relaybus delivery benchmark: ${total.toLocaleString("en")} ~1 KB events, ${connections} connections, one rule, one webhook target\n`);
  console.log("| measure | value |");
  console.log("| --- | ---: |");
  console.log(`| ingest while delivering | ${Math.round((total / ingestMs) * 1000).toLocaleString("en")} events/s |`);
  console.log(`| all delivered after | ${(doneMs / 1000).toFixed(2)} s |`);
  console.log(`| end-to-end delivered | ${Math.round((delivered.size / doneMs) * 1000).toLocaleString("en")} events/s |`);
  console.log(`| delivered / acked / failed | ${delivered.size.toLocaleString("en")} / ${(total - failed).toLocaleString("en")} / ${failed} (${deliveries - delivered.size} duplicates) |`);
} finally {
  await server.stop();
  await agent.close();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
