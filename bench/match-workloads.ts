/**
 * Generated rule sets and events for `bench/match.ts`, deterministic for a seed.
 *
 * - `selective`: what a bus with many tenants looks like. Each rule names one `source` (of 300)
 *   and one to three of that source's 8 `detail-type`s, one "identity" condition that picks out
 *   one tenant (an exact tenant id, a bucket-name prefix, an ignore-case user id, an account
 *   number range, a /24 cidr, a path wildcard, a resource ARN prefix or an item SKU inside an
 *   array of objects), and up to two looser conditions (state lists, anything-but, region
 *   prefixes, amount ranges, exists true/false, tags, a two-branch `$or`). Rules come in
 *   families of one to three on the same source, tenant and detail type. Three events in four
 *   are aimed at a rule (built to satisfy it, and so sometimes its siblings), the rest are
 *   random. Every field an identity condition reads derives from the event's tenant, and no two
 *   families share a source and tenant, so an event matches 0 to 3 rules at any rule count
 *   (up to the 15 million source and tenant pairs).
 * - `dense`: 3 sources and 5 detail types, conditions mostly loose (a source or two, a type,
 *   a type prefix, anything-but, wide numeric ranges, exists), so an event matches a sizeable
 *   fraction of the rules (~10-15%).
 *
 * Events look like EventBridge events (~800 bytes: envelope, `resources`, a `detail` with
 * nested objects, arrays of strings and an array of objects).
 */

/** A small deterministic PRNG (mulberry32): same seed, same workload, on every machine. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(probability: number): boolean;
  /** `count` distinct items in random order (a partial Fisher-Yates shuffle). */
  sample<T>(items: readonly T[], count: number): T[];
}

export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)]!,
    chance: (probability: number) => next() < probability,
    sample: <T>(items: readonly T[], count: number): T[] => {
      const copy = [...items];
      const take = Math.min(count, copy.length);
      for (let i = 0; i < take; i++) {
        const j = i + int(copy.length - i);
        [copy[i], copy[j]] = [copy[j]!, copy[i]!];
      }
      return copy.slice(0, take);
    },
  };
}

/** The workloads `--workload` accepts. */
export const WORKLOADS = ["selective", "dense"] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface Workload {
  /** Raw patterns (JSON objects), to go through `parseEventPattern`. */
  readonly patterns: Record<string, unknown>[];
  readonly events: Record<string, unknown>[];
}

/** Generates `ruleCount` patterns and `eventCount` events of the named workload. */
export function generateWorkload(name: WorkloadName, ruleCount: number, eventCount: number, seed: number): Workload {
  const random = createRandom(seed);
  return name === "selective" ? selective(random, ruleCount, eventCount) : dense(random, ruleCount, eventCount);
}

// ---- shared vocabulary ----------------------------------------------------------------------

/** Tenant ids run 0..TENANT_SPACE-1; under 65,536 so that each has its own 10.x.y.0/24. */
const TENANT_SPACE = 50_000;
const STATES = ["pending", "running", "stopping", "stopped", "terminated", "failed"] as const;
const REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"] as const;
const TIERS = ["free", "silver", "gold", "platinum"] as const;
const TAGS = ["urgent", "pager", "billing", "beta", "internal", "export"] as const;
const CURRENCIES = ["EUR", "USD", "GBP"] as const;
const BUCKET_KINDS = ["logs", "data", "backup"] as const;
const BASE_TIME = Date.UTC(2024, 4, 1);

const pad = (tenant: number): string => String(tenant).padStart(5, "0");

function hex(random: Random, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += "0123456789abcdef"[random.int(16)];
  return text;
}

function randomCase(random: Random, text: string): string {
  return random.pick([text, text.toUpperCase(), text[0]!.toUpperCase() + text.slice(1)]);
}

type Detail = Record<string, unknown> & {
  user: Record<string, unknown>;
  items: Record<string, unknown>[];
  tags: string[];
};

/** A random event of `source` and `type` belonging to `tenant`; every tenant-derived field agrees. */
function baseEvent(random: Random, source: string, type: string, tenant: number): Record<string, unknown> & { detail: Detail } {
  const id = pad(tenant);
  const items: Record<string, unknown>[] = [{ sku: `sku-${id}`, qty: 1 + random.int(4), price: random.int(10_000) / 100 }];
  for (let i = random.int(3); i > 0; i--) {
    // Other SKUs have six hex digits, so they never name a tenant's five-digit SKU.
    items.splice(random.int(items.length + 1), 0, { sku: `sku-${hex(random, 6)}`, qty: 1 + random.int(4), price: random.int(10_000) / 100 });
  }
  const detail: Detail = {
    tenant: `t-${id}`,
    state: random.pick(STATES),
    amount: random.int(1_000_000) / 100,
    currency: random.pick(CURRENCIES),
    priority: 1 + random.int(5),
    "account-number": tenant * 100 + random.int(100),
    "source-ip": `10.${tenant >> 8}.${tenant & 255}.${random.int(256)}`,
    path: `/tenants/t-${id}/${random.pick(REGIONS)}/orders/${random.int(1_000_000)}`,
    bucket: { name: `bkt-${id}-${random.pick(BUCKET_KINDS)}` },
    user: { id: randomCase(random, `user-${id}`), ...(random.chance(0.8) ? { tier: random.pick(TIERS) } : {}) },
    tags: TAGS.filter(() => random.chance(0.2)),
    items,
  };
  if (random.chance(0.2)) detail.error = random.pick(["Timeout", "Throttled", "AccessDenied"]);
  return {
    version: "0",
    id: `${hex(random, 8)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 4)}-${hex(random, 12)}`,
    "detail-type": type,
    source,
    account: "123456789012",
    time: new Date(BASE_TIME + random.int(86_400_000)).toISOString(),
    region: random.pick(REGIONS),
    resources: [`arn:aws:s3:::bkt-${id}-logs`, `arn:aws:ec2:us-east-1:123456789012:instance/i-${hex(random, 17)}`],
    detail,
  };
}

/** Writes `fragment` into `target`, merging objects and replacing everything else. */
function merge(target: Record<string, unknown>, fragment: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(fragment)) {
    const existing = target[key];
    if (isPlainObject(value) && isPlainObject(existing)) merge(existing, value);
    else target[key] = value;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---- selective --------------------------------------------------------------------------

const ORGS = ["aws", "com.acme", "com.globex", "io.initech", "org.umbrella", "net.hooli"] as const;
const SERVICES = [
  "orders", "payments", "billing", "shipping", "inventory", "users", "auth", "search", "catalog", "reviews",
  "ec2", "s3", "lambda", "ecs", "rds", "sqs", "sns", "iam", "kms", "cloudtrail",
  "support", "analytics", "marketing", "fraud", "ledger",
] as const;
const DETAIL_TYPES = [
  "Order Created", "Order Updated", "Order Cancelled", "Payment Captured", "Payment Failed", "Refund Issued",
  "Shipment Sent", "Shipment Delivered", "Stock Low", "User Signed Up", "User Deleted", "Login Failed",
  "EC2 Instance State-change Notification", "Object Created", "Object Deleted", "Function Invoked",
  "Task State Change", "DB Snapshot Completed", "Message Dead-lettered", "Key Rotated",
  "AWS API Call via CloudTrail", "Ticket Opened", "Report Ready", "Fraud Suspected",
] as const;

interface Source {
  readonly name: string;
  readonly types: readonly string[];
}

/** 300 sources (6 organisations x 25 services x public/internal), 8 detail types each. */
function selectiveSources(random: Random): Source[] {
  const sources: Source[] = [];
  for (const org of ORGS) {
    for (const service of SERVICES) {
      for (const variant of ["", "-internal"]) {
        const types = random.sample(DETAIL_TYPES, 8);
        sources.push({ name: `${org}.${service}${variant}`, types });
      }
    }
  }
  return sources;
}

type Event = ReturnType<typeof baseEvent>;

/** One condition of a rule: its pattern fragment and how to make an event satisfy it. */
interface Condition {
  readonly fragment: Record<string, unknown>;
  /** Fields it constrains, so that a rule never holds two conditions that could contradict. */
  readonly groups: readonly string[];
  satisfy(event: Event, random: Random): void;
}

const noChange = (): void => {};

/** Conditions that pick out one tenant. Every field they read derives from the tenant id. */
const IDENTITIES: readonly ((tenant: number) => Condition)[] = [
  (t) => ({ fragment: { detail: { tenant: [`t-${pad(t)}`] } }, groups: [], satisfy: noChange }),
  (t) => ({ fragment: { detail: { bucket: { name: [{ prefix: `bkt-${pad(t)}-` }] } } }, groups: [], satisfy: noChange }),
  (t) => ({ fragment: { detail: { user: { id: [{ "equals-ignore-case": `USER-${pad(t)}` }] } } }, groups: [], satisfy: noChange }),
  (t) => ({
    fragment: { detail: { "account-number": [{ numeric: [">=", t * 100, "<", t * 100 + 100] }] } },
    groups: [],
    satisfy: noChange,
  }),
  (t) => ({ fragment: { detail: { "source-ip": [{ cidr: `10.${t >> 8}.${t & 255}.0/24` }] } }, groups: [], satisfy: noChange }),
  (t) => ({ fragment: { detail: { path: [{ wildcard: `/tenants/t-${pad(t)}/*/orders/*` }] } }, groups: [], satisfy: noChange }),
  (t) => ({ fragment: { resources: [{ prefix: `arn:aws:s3:::bkt-${pad(t)}-` }] }, groups: [], satisfy: noChange }),
  // The SKU and the quantity must come from the same element of detail.items.
  (t) => ({
    fragment: { detail: { items: { sku: [`sku-${pad(t)}`], qty: [{ numeric: [">=", 2] }] } } },
    groups: ["items"],
    satisfy: (event) => {
      for (const item of event.detail.items) if (item.sku === `sku-${pad(t)}`) item.qty = 2 + ((item.qty as number) % 3);
    },
  }),
];

/** Looser conditions; a rule takes up to two with no group in common. */
const EXTRAS: readonly ((random: Random) => Condition)[] = [
  (random) => {
    const states = random.sample(STATES, 2);
    return {
      fragment: { detail: { state: states } },
      groups: ["state"],
      satisfy: (event, r) => void (event.detail.state = r.pick(states)),
    };
  },
  (random) => {
    const excluded = random.pick(STATES);
    return {
      fragment: { detail: { state: [{ "anything-but": [excluded, "terminated"] }] } },
      groups: ["state"],
      satisfy: (event, r) => {
        const allowed = STATES.filter((s) => s !== excluded && s !== "terminated");
        event.detail.state = r.pick(allowed);
      },
    };
  },
  () => ({
    fragment: { detail: { state: [{ "equals-ignore-case": "RUNNING" }] } },
    groups: ["state"],
    satisfy: (event) => void (event.detail.state = "running"),
  }),
  (random) => {
    const prefix = random.pick(["us-", "eu-"]);
    return {
      fragment: { region: [{ prefix }] },
      groups: ["region"],
      satisfy: (event, r) => void (event.region = r.pick(REGIONS.filter((region) => region.startsWith(prefix)))),
    };
  },
  (random) => {
    const low = random.int(5000);
    const high = low + 1 + random.int(5000);
    return {
      fragment: { detail: { amount: [{ numeric: [">", low, "<=", high] }] } },
      groups: ["amount"],
      satisfy: (event, r) => void (event.detail.amount = low + 1 + r.int(high - low)),
    };
  },
  (random) => {
    const least = 2 + random.int(3);
    return {
      fragment: { detail: { priority: [{ numeric: [">=", least] }] } },
      groups: ["priority"],
      satisfy: (event, r) => void (event.detail.priority = least + r.int(6 - least)),
    };
  },
  () => ({
    fragment: { detail: { priority: [{ "anything-but": [1] }] } },
    groups: ["priority"],
    satisfy: (event, r) => void (event.detail.priority = 2 + r.int(4)),
  }),
  () => ({
    fragment: { detail: { user: { tier: [{ exists: true }] } } },
    groups: ["tier"],
    satisfy: (event, r) => void (event.detail.user.tier ??= r.pick(TIERS)),
  }),
  () => ({
    fragment: { detail: { error: [{ exists: false }] } },
    groups: ["error"],
    satisfy: (event) => void delete event.detail.error,
  }),
  (random) => {
    const tags = random.chance(0.5) ? ["urgent"] : ["urgent", "pager"];
    return {
      fragment: { detail: { tags } },
      groups: ["tags"],
      satisfy: (event, r) => {
        const tag = r.pick(tags);
        if (!event.detail.tags.includes(tag)) event.detail.tags.push(tag);
      },
    };
  },
  () => ({
    fragment: { detail: { $or: [{ state: ["failed"] }, { priority: [{ numeric: [">=", 4] }] }] } },
    groups: ["state", "priority"],
    satisfy: (event, r) => {
      if (r.chance(0.5)) event.detail.state = "failed";
      else event.detail.priority = 4 + r.int(2);
    },
  }),
];

interface SelectiveRule {
  readonly source: Source;
  readonly types: readonly string[];
  readonly tenant: number;
  readonly conditions: readonly Condition[];
}

/**
 * A family of one to three rules on the same source, tenant and one shared detail type, as when
 * a tenant has an archive rule, an alerting rule and an audit rule on one stream; an event
 * aimed at one of them also meets its siblings when their other conditions happen to hold.
 */
function selectiveFamily(random: Random, sources: readonly Source[], taken: Set<string>): SelectiveRule[] {
  // One family per source and tenant: two would add up past three matches for one event.
  let source: Source;
  let tenant: number;
  do {
    source = random.pick(sources);
    tenant = random.int(TENANT_SPACE);
  } while (taken.has(`${source.name} ${tenant}`));
  taken.add(`${source.name} ${tenant}`);
  const shared = random.pick(source.types);
  const size = random.chance(0.6) ? 1 : random.chance(0.6) ? 2 : 3;
  return Array.from({ length: size }, () => {
    const others = source.types.filter((type) => type !== shared);
    const types = [shared, ...random.sample(others, random.chance(0.6) ? 0 : 1 + random.int(2))];
    const conditions = [random.pick(IDENTITIES)(tenant)];
    const used = new Set(conditions[0]!.groups);
    for (let extra = random.int(3); extra > 0; extra--) {
      const condition = random.pick(EXTRAS)(random);
      if (condition.groups.some((group) => used.has(group))) continue;
      for (const group of condition.groups) used.add(group);
      conditions.push(condition);
    }
    return { source, types, tenant, conditions };
  });
}

function selectivePattern(rule: SelectiveRule): Record<string, unknown> {
  const pattern: Record<string, unknown> = { source: [rule.source.name], "detail-type": [...rule.types] };
  for (const condition of rule.conditions) merge(pattern, structuredClone(condition.fragment));
  return pattern;
}

function selective(random: Random, ruleCount: number, eventCount: number): Workload {
  const sources = selectiveSources(random);
  const rules: SelectiveRule[] = [];
  const taken = new Set<string>();
  while (rules.length < ruleCount) rules.push(...selectiveFamily(random, sources, taken).slice(0, ruleCount - rules.length));
  const events = Array.from({ length: eventCount }, () => {
    if (rules.length === 0 || random.chance(0.25)) {
      const source = random.pick(sources);
      return baseEvent(random, source.name, random.pick(source.types), random.int(TENANT_SPACE));
    }
    const rule = random.pick(rules);
    const event = baseEvent(random, rule.source.name, random.pick(rule.types), rule.tenant);
    for (const condition of rule.conditions) condition.satisfy(event, random);
    return event;
  });
  return { patterns: rules.map(selectivePattern), events };
}

// ---- dense ------------------------------------------------------------------------------

const DENSE_SOURCES = ["shop.orders", "shop.payments", "shop.shipping"] as const;
const DENSE_TYPES = ["Order Created", "Order Updated", "Payment Captured", "Payment Failed", "Shipment Sent"] as const;

const DENSE_EXTRAS: readonly ((random: Random) => Record<string, unknown>)[] = [
  (random) => ({ detail: { amount: [{ numeric: [">", random.int(2000)] }] } }),
  (random) => ({ detail: { state: [{ "anything-but": random.pick(STATES) }] } }),
  (random) => ({ region: [{ prefix: random.pick(["us-", "eu-"]) }] }),
  () => ({ detail: { user: { tier: [{ exists: true }] } } }),
  () => ({ detail: { error: [{ exists: false }] } }),
  (random) => ({ detail: { priority: [{ numeric: [">=", 1 + random.int(3)] }] } }),
  (random) => ({ detail: { currency: random.sample(CURRENCIES, 2) } }),
  () => ({ detail: { items: { qty: [{ numeric: [">=", 2] }] } } }),
];

function densePattern(random: Random): Record<string, unknown> {
  const pattern: Record<string, unknown> = {};
  const sourceRoll = random.next();
  if (sourceRoll < 0.7) pattern.source = [random.pick(DENSE_SOURCES)];
  else if (sourceRoll < 0.9) pattern.source = random.sample(DENSE_SOURCES, 2);
  const typeRoll = random.next();
  if (typeRoll < 0.4) pattern["detail-type"] = [random.pick(DENSE_TYPES)];
  else if (typeRoll < 0.65) pattern["detail-type"] = random.sample(DENSE_TYPES, 2 + random.int(2));
  else if (typeRoll < 0.8) pattern["detail-type"] = [{ prefix: random.pick(["Order ", "Payment ", "Shipment "]) }];
  else if (typeRoll < 0.9) pattern["detail-type"] = [{ "anything-but": random.pick(DENSE_TYPES) }];
  const extras = Object.keys(pattern).length === 0 ? 1 + random.int(2) : random.int(3);
  for (let i = 0; i < extras; i++) merge(pattern, random.pick(DENSE_EXTRAS)(random));
  return pattern;
}

function dense(random: Random, ruleCount: number, eventCount: number): Workload {
  const patterns = Array.from({ length: ruleCount }, () => densePattern(random));
  const events = Array.from({ length: eventCount }, () =>
    baseEvent(random, random.pick(DENSE_SOURCES), random.pick(DENSE_TYPES), random.int(TENANT_SPACE)),
  );
  return { patterns, events };
}
