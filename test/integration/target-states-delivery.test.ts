/**
 * Target health with real delivery: a receiver answering 410 Gone disables its target, the
 * target's later deliveries are dead-lettered with the reason, and after `:enable` a redrive
 * delivers them. Another target of the same rule is not held up meanwhile.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createReceiver, type Receiver } from "../helpers/receiver.js";
import { startTestService, type TestService } from "../helpers/service.js";

type Obj = Record<string, unknown>;

let receiver: Receiver;
let service: TestService;

before(async () => {
  receiver = await createReceiver();
  receiver.always("/gone", { status: 410, body: "endpoint retired" });
  service = await startTestService({
    rules: {
      "orders.yaml": `bus: orders
rules:
  - name: fan-out
    pattern: {source: [shop.orders]}
    targets:
      - id: gone
        webhook: {url: "${receiver.url}/gone"}
      - id: fine
        webhook: {url: "${receiver.url}/fine"}
`,
    },
  });
});
after(async () => {
  await service.close();
  await receiver.close();
});

async function publish(n: number): Promise<void> {
  const response = await service.post("/v1/events", {
    Entries: [{ Source: "shop.orders", DetailType: "order.created", Detail: JSON.stringify({ n }), EventBusName: "orders" }],
  });
  assert.equal(((await response.json()) as { FailedEntryCount: number }).FailedEntryCount, 0);
}

async function getJson(path: string): Promise<Obj> {
  const response = await service.get(path);
  const body = (await response.json()) as Obj;
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

/** Polls `read` until `done` holds (5 s at most), and returns the last value read. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const STATUS = "/v1/buses/orders/rules/fan-out/targets/gone/status";
const deadLettersOfGone = async () =>
  ((await getJson("/v1/dead-letters?bus=orders&target=gone")).deadLetters as Obj[]);

test("target health - a 410 Gone disables the target, with the reason in its status", async () => {
  await publish(1);
  const status = await until(() => getJson(STATUS), (s) => s.state === "disabled", "the target's status");
  assert.match(String(status.reason), /^the endpoint answered 410 Gone at \d{4}-\d\d-\d\dT[\d:.]+Z$/);
  assert.equal(status.cause, "gone");
  const letters = await until(deadLettersOfGone, (l) => l.length === 1, "the dead letters of the 410");
  assert.match(String(letters[0]?.reason), /410/);
  await receiver.waitFor(1, 5_000, "/fine");
});

test("target health - a disabled target's deliveries are dead-lettered with the reason; the other target still gets its events", async () => {
  const reason = String((await getJson(STATUS)).reason);
  await publish(2);
  await publish(3);
  await receiver.waitFor(3, 5_000, "/fine");
  const letters = await until(deadLettersOfGone, (l) => l.length === 3, "the dead letters of the disabled target");
  const disabledOnes = letters.filter((l) => l.reason === `target disabled: ${reason}`);
  assert.equal(disabledOnes.length, 2, JSON.stringify(letters.map((l) => l.reason)));
  assert.equal(receiver.requestsTo("/gone").length, 1, "nothing more was sent to it");
});

test("target health - once enabled, a redrive of those dead letters delivers them", async () => {
  receiver.always("/gone", { status: 204 });
  const enabled = await service.post("/v1/buses/orders/rules/fan-out/targets/gone:enable", {});
  // The live circuit, as the engine holds it: the 410 did not count as a failure.
  assert.deepEqual(await enabled.json(), { state: "enabled", circuit: { state: "closed", consecutiveFailures: 0 } });
  const redrive = await service.post("/v1/dead-letters:redrive", {
    filter: { bus: "orders", target: "gone", reason: "target disabled" },
  });
  const result = (await redrive.json()) as Obj;
  assert.equal(result.redriven, 2, JSON.stringify(result));
  await receiver.waitFor(3, 5_000, "/gone");
  const status = await getJson(STATUS);
  assert.equal(status.state, "enabled");
  assert.equal(status.failingSince, undefined);
});
