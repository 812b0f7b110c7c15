// Matches per second of the compiled pattern matcher (and, for scale, the reference matcher)
// on a few realistic patterns and events. Run: npm run bench:patterns
// Not a test: it prints figures a person can compare between commits and machines.
import { compileEventPattern } from "../src/patterns/compile-pattern.js";
import { parseEventPattern } from "../src/patterns/parse-pattern.js";
import { matchesEventPattern } from "../src/patterns/reference-matcher.js";

const orderEvent = {
  specversion: "1.0",
  id: "5b0c2a44-6a7e-4c1f-9d55-0d7f3f0b9a10",
  source: "shop.orders",
  type: "order.created",
  time: "2024-05-01T12:00:00Z",
  data: {
    id: "o-1001",
    total: 149.5,
    currency: "EUR",
    customer: { tier: "gold", country: "DE", ip: "10.1.2.3" },
    items: [
      { sku: "A-1", qty: 1, price: 99.5 },
      { sku: "B-7", qty: 2, price: 25 },
    ],
  },
};

const s3Event = {
  version: "0",
  id: "17793124-05d4-b198-2fde-7ededc63b103",
  "detail-type": "Object Created",
  source: "aws.s3",
  account: "123456789012",
  time: "2021-11-12T00:00:00Z",
  region: "ca-central-1",
  resources: ["arn:aws:s3:::example-bucket"],
  detail: {
    bucket: { name: "example-bucket" },
    object: { key: "uploads/2021/11/photo.PNG", size: 5, etag: "b1946ac92492d2347c6235b4d2611184" },
    "request-id": "N4N7GDK58NMKJ12R",
    "source-ip-address": "203.0.113.15",
  },
};

const cases: { name: string; pattern: object; event: object }[] = [
  {
    name: "exact source + type (match)",
    pattern: { source: ["shop.orders"], type: ["order.created", "order.updated"] },
    event: orderEvent,
  },
  {
    name: "exact source (no match, first field)",
    pattern: { source: ["shop.payments"], type: ["order.created"] },
    event: orderEvent,
  },
  {
    name: "numeric + anything-but + exists (match)",
    pattern: {
      source: ["shop.orders"],
      data: {
        total: [{ numeric: [">", 100, "<=", 1000] }],
        currency: [{ "anything-but": ["USD", "GBP"] }],
        customer: { tier: [{ exists: true }] },
      },
    },
    event: orderEvent,
  },
  {
    name: "array of objects, consistent fields (match)",
    pattern: { data: { items: { sku: ["B-7"], qty: [{ numeric: [">=", 2] }] } } },
    event: orderEvent,
  },
  {
    name: "s3: prefix, ignore-case suffix, wildcard, cidr (match)",
    pattern: {
      source: ["aws.s3"],
      "detail-type": [{ prefix: "Object " }],
      detail: {
        bucket: { name: [{ wildcard: "example-*" }] },
        object: { key: [{ suffix: { "equals-ignore-case": ".png" } }] },
        "source-ip-address": [{ cidr: "203.0.113.0/24" }],
      },
    },
    event: s3Event,
  },
  {
    name: "$or over three branches (last branch matches)",
    pattern: {
      source: ["aws.s3"],
      detail: {
        $or: [
          { object: { size: [{ numeric: [">", 1000] }] } },
          { bucket: { name: ["other-bucket"] } },
          { object: { key: [{ prefix: "uploads/" }] } },
        ],
      },
    },
    event: s3Event,
  },
];

function rate(fn: () => boolean, minMs = 400): number {
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += fn() ? 1 : 0; // warm up the JIT
  let iterations = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 10_000; i++) sink += fn() ? 1 : 0;
    iterations += 10_000;
    elapsed = performance.now() - started;
  }
  if (sink < 0) console.log(sink); // keep the result alive
  return (iterations / elapsed) * 1000;
}

const format = (perSecond: number): string => `${(perSecond / 1e6).toFixed(2).padStart(7)} M/s`;

console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
console.log(`${"case".padEnd(54)} ${"compiled".padStart(11)} ${"reference".padStart(11)}`);
for (const { name, pattern, event } of cases) {
  const parsed = parseEventPattern(pattern);
  const compiled = compileEventPattern(parsed);
  const expected = matchesEventPattern(parsed, event);
  if (compiled.matches(event) !== expected) throw new Error(`matchers disagree on ${name}`);
  const compiledRate = rate(() => compiled.matches(event));
  const referenceRate = rate(() => matchesEventPattern(parsed, event), 200);
  console.log(`${name.padEnd(54)} ${format(compiledRate)} ${format(referenceRate)}`);
}
