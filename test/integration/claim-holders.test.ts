/**
 * Which node holds a claimed event (`src/log/jetstream/claim-holders.ts`), over the local NATS
 * server: two nodes, each with its own connection; the one holding an event says so while its
 * claim is alive, and nobody does once it acknowledged the event or let its claim run out.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { connect } from "nats";
import { createClaimHolders, type ClaimHolders } from "../../src/log/jetstream/claim-holders.js";
import { jetStreamNames } from "../../src/log/jetstream/jetstream-names.js";
import { requireService } from "../helpers/local-services.js";
import { TEST_NATS_URL } from "../helpers/test-engine.js";

const natsMissing = await requireService("nats");

async function node(t: TestContext, prefix: string, claimMs: number): Promise<ClaimHolders> {
  const connection = await connect({ servers: TEST_NATS_URL });
  const holders = createClaimHolders({ connection, names: jetStreamNames(prefix), work: "dispatch", claimMs });
  t.after(async () => {
    holders.close();
    await connection.close();
  });
  return holders;
}

test("claim holders - a node holding an event says so to any node, itself included, until it acknowledges it", { skip: natsMissing }, async (t) => {
  const prefix = `HOLD${process.pid}a`;
  const [a, b] = [await node(t, prefix, 30_000), await node(t, prefix, 30_000)];
  a.holding("orders.eu", 17);
  assert.equal(await b.isHeld("orders.eu", 17), true);
  assert.equal(await a.isHeld("orders.eu", 17), true);
  assert.equal(await b.isHeld("orders.eu", 18), false, "another event");
  assert.equal(await b.isHeld("orders_eu", 17), false, "another bus");
  a.released("orders.eu", 17);
  assert.equal(await b.isHeld("orders.eu", 17), false);
});

test("claim holders - a claim neither renewed nor acknowledged within the claim time is no longer held; a renewed one is", { skip: natsMissing }, async (t) => {
  const prefix = `HOLD${process.pid}b`;
  const [a, b] = [await node(t, prefix, 600), await node(t, prefix, 600)];
  a.holding("default", 1);
  a.holding("default", 2);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 250));
    a.holding("default", 2); // renewed, as the claim keeper does every third of the claim time
  }
  // Renewed first: asking after one nobody holds waits out the answer time (1 s), longer than this claim.
  assert.equal(await b.isHeld("default", 2), true, "renewed");
  assert.equal(await b.isHeld("default", 1), false, "ran out");
});

test("claim holders - with nobody answering, an event is not held", { skip: natsMissing }, async (t) => {
  const lone = await node(t, `HOLD${process.pid}c`, 30_000);
  lone.close(); // no node listens on the prefix now: NATS says so at once
  const startedMs = Date.now();
  assert.equal(await lone.isHeld("default", 1), false);
  assert.ok(Date.now() - startedMs < 900, "no responders is known at once, not after the wait");
});
