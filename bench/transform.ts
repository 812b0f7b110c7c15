// Evaluations per second of target transforms on the compiled path and on the jsonata engine
// (how every transform ran before), through the same `evaluate` the dispatcher calls: budget,
// JSON result and all. Run: npm run bench:transform
// Not a test: it prints figures a person can compare between commits and machines.
import { isDeepStrictEqual } from "node:util";
import {
  compileTransform,
  compileTransformOnEngine,
  type CompiledTransform,
} from "../src/transform/compile-transform.js";
import type { JsonValue } from "../src/types.js";

const limits = { maxTransformBytes: 8_192 };
const timeoutMs = 100;

const orderEvent: JsonValue = {
  specversion: "1.0",
  id: "5b0c2a44-6a7e-4c1f-9d55-0d7f3f0b9a10",
  source: "shop.orders",
  type: "order.created",
  time: "2024-05-01T12:00:00Z",
  datacontenttype: "application/json",
  data: {
    id: "o-1001",
    total: 149.5,
    currency: "EUR",
    customer: { id: "c-42", name: "Ada Lovelace", tier: "gold", country: "de" },
    items: [
      { sku: "A-1", qty: 1, price: 99.5 },
      { sku: "B-7", qty: 2, price: 25 },
    ],
  },
};

const cases: { name: string; expression: string }[] = [
  {
    // The typical target transform: a few fields, a concatenation, a $map.
    name: "typical: fields, & and $map over 2 items",
    expression: `{
      "orderId": data.id,
      "customer": data.customer.name & " (" & data.customer.tier & ")",
      "total": data.total,
      "lines": $map(data.items, function($i) { {"sku": $i.sku, "amount": $i.qty * $i.price} })
    }`,
  },
  {
    name: "rename three fields",
    expression: `{"orderId": data.id, "amount": data.total, "currency": data.currency}`,
  },
  {
    name: "filter, sum and string functions",
    expression: `{
      "big": data.items[price > 50].sku,
      "value": $round($sum(data.items.(qty * price)), 2),
      "skus": $join(data.items.sku, ","),
      "country": $uppercase(data.customer.country),
      "tier": data.customer.tier = "gold" ? "priority" : "standard"
    }`,
  },
  {
    name: "AWS-style envelope around the whole data",
    expression: `{"version": "0", "id": id, "detail-type": type, "source": source, "time": time, "detail": data}`,
  },
];

async function rate(transform: CompiledTransform, minMs: number): Promise<number> {
  for (let i = 0; i < 2_000; i++) await transform.evaluate(orderEvent, timeoutMs); // warm up the JIT
  let iterations = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 1_000; i++) await transform.evaluate(orderEvent, timeoutMs);
    iterations += 1_000;
    elapsed = performance.now() - started;
  }
  return (iterations / elapsed) * 1000;
}

const perSecond = (n: number): string => `${Math.round(n).toLocaleString("en-US")}/s`.padStart(12);
const micros = (n: number): string => `${(1e6 / n).toFixed(1)} µs`.padStart(9);

console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
console.log(
  `${"transform".padEnd(44)} ${"compiled".padStart(12)} ${"".padStart(9)} ${"jsonata".padStart(12)} ${"".padStart(9)} speed-up`,
);
for (const { name, expression } of cases) {
  const compiled = compileTransform(expression, limits);
  const engine = compileTransformOnEngine(expression, limits);
  if (compiled.engine !== "compiled") {
    throw new Error(`${name}: not compiled (${compiled.fallbackReason ?? "?"})`);
  }
  const [fast, slow] = await Promise.all([
    compiled.evaluate(orderEvent, timeoutMs),
    engine.evaluate(orderEvent, timeoutMs),
  ]);
  if (!isDeepStrictEqual(fast, slow)) throw new Error(`engines disagree on ${name}`);
  const compiledRate = await rate(compiled, 1_000);
  const engineRate = await rate(engine, 500);
  console.log(
    `${name.padEnd(44)} ${perSecond(compiledRate)} ${micros(compiledRate)} ${perSecond(engineRate)} ${micros(engineRate)} ${(compiledRate / engineRate).toFixed(1).padStart(7)}x`,
  );
}
console.log("(issue 4 item 8 floor for the typical transform: 200,000/s compiled)");
