/**
 * What an API key may do (its scopes), and what each route needs.
 *
 * Scopes:
 * - `publish:<bus>`, `publish:<prefix>*`, `publish:*`: publish to that bus, to buses whose name
 *   starts with the prefix, or to every bus (the three ingest routes).
 * - `read`: read the log, traces, usage, billing, dead letters, and the configuration
 *   (buses, rules, connections with their secrets hidden, archives, replays, target status).
 * - `manage`: change buses, rules, targets, signing secrets, connections, archives, replays, streams;
 *   redrive and purge dead letters; test patterns and dry-run rules. Includes `read`.
 * - `admin`: everything, API keys, the audit log and closing billing periods included. Includes `manage`
 *   and `publish:*`.
 *
 * `publish` is on its own axis: a `manage` key cannot publish, a `publish:*` key cannot read.
 */
import { RelaybusError } from "../errors.js";
import { NAME_PATTERN } from "../rules/model.js";

/** What a route needs: nothing, a publish right, or one of the levels. */
export type RouteNeed = "open" | "publish" | "read" | "manage" | "admin";

/** A key's scopes, compiled once: the checks are then a comparison or a prefix test. */
export interface Grants {
  level: "none" | "read" | "manage" | "admin";
  /** True for `publish:*` (and `admin`). */
  publishAll: boolean;
  /** Buses named exactly (`publish:orders`). */
  publishBuses: ReadonlySet<string>;
  /** Bus name prefixes (`publish:shop-*` gives `shop-`). */
  publishPrefixes: readonly string[];
}

/** Most scopes one key may carry. */
export const MAX_SCOPES_PER_KEY = 64;

const LEVELS = ["read", "manage", "admin"] as const;
const LEVEL_RANK = { none: 0, read: 1, manage: 2, admin: 3 } as const;
const PUBLISH = "publish:";

/**
 * Checks scopes as given to the API; throws `ValidationError` naming the first bad one.
 * Returns them de-duplicated, in the order given.
 */
export function parseScopes(scopes: readonly string[], field = "scopes"): string[] {
  if (scopes.length === 0) throw new RelaybusError("ValidationError", `${field}: at least one scope is required`);
  if (scopes.length > MAX_SCOPES_PER_KEY) {
    throw new RelaybusError("ValidationError", `${field}: at most ${MAX_SCOPES_PER_KEY} scopes, got ${scopes.length}`);
  }
  for (const [index, scope] of scopes.entries()) {
    if (!isScope(scope)) {
      throw new RelaybusError(
        "ValidationError",
        `${field}[${index}]: ${JSON.stringify(scope)} is not a scope; use publish:<bus>, publish:<prefix>*, publish:*, read, manage or admin`,
        { details: { field: `${field}[${index}]` } },
      );
    }
  }
  return [...new Set(scopes)];
}

function isScope(scope: string): boolean {
  if ((LEVELS as readonly string[]).includes(scope)) return true;
  if (!scope.startsWith(PUBLISH)) return false;
  const bus = scope.slice(PUBLISH.length);
  if (bus === "*") return true;
  const name = bus.endsWith("*") ? bus.slice(0, -1) : bus;
  return NAME_PATTERN.test(name);
}

/** Compiles checked scopes ({@link parseScopes}) into {@link Grants}. */
export function compileGrants(scopes: readonly string[]): Grants {
  let level: Grants["level"] = "none";
  let publishAll = false;
  const publishBuses = new Set<string>();
  const publishPrefixes: string[] = [];
  for (const scope of scopes) {
    if (scope === "read" || scope === "manage" || scope === "admin") {
      if (LEVEL_RANK[scope] > LEVEL_RANK[level]) level = scope;
      continue;
    }
    const bus = scope.slice(PUBLISH.length);
    if (bus === "*") publishAll = true;
    else if (bus.endsWith("*")) publishPrefixes.push(bus.slice(0, -1));
    else publishBuses.add(bus);
  }
  if (level === "admin") publishAll = true;
  return { level, publishAll, publishBuses, publishPrefixes };
}

/** True when the grants allow publishing to `bus`. */
export function mayPublish(grants: Grants, bus: string): boolean {
  if (grants.publishAll || grants.publishBuses.has(bus)) return true;
  for (const prefix of grants.publishPrefixes) if (bus.startsWith(prefix)) return true;
  return false;
}

/** True when the grants reach the level a route needs (`publish` routes check the bus instead). */
export function mayCall(grants: Grants, need: RouteNeed): boolean {
  switch (need) {
    case "open":
      return true;
    case "publish":
      return grants.publishAll || grants.publishBuses.size > 0 || grants.publishPrefixes.length > 0;
    default:
      return LEVEL_RANK[grants.level] >= LEVEL_RANK[need];
  }
}

/**
 * Every route of openapi.yaml with what it needs, as `[method, path template, need]`. A route
 * not in this table needs `admin`: one added without a line here is closed, not open
 * (test/integration/auth-scopes.test.ts checks that every documented route is listed).
 */
export const ROUTE_NEEDS: readonly (readonly [string, string, RouteNeed])[] = [
  ["GET", "/healthz", "open"],
  // Ingest (the data plane checks the bus of each event).
  ["POST", "/v1/events", "publish"],
  ["POST", "/", "publish"],
  ["POST", "/v1/buses/{bus}/cloudevents", "publish"],
  // Configuration, read.
  ["GET", "/v1/buses", "read"],
  ["GET", "/v1/buses/{bus}", "read"],
  ["GET", "/v1/buses/{bus}/rules", "read"],
  ["GET", "/v1/buses/{bus}/rules/{name}", "read"],
  ["GET", "/v1/buses/{bus}/rules/{rule}/targets/{target}/status", "read"],
  ["GET", "/v1/connections", "read"],
  ["GET", "/v1/connections/{name}", "read"],
  ["GET", "/v1/archives", "read"],
  ["GET", "/v1/archives/{name}", "read"],
  ["GET", "/v1/replays", "read"],
  ["GET", "/v1/replays/{name}", "read"],
  ["GET", "/v1/connectors", "read"],
  ["GET", "/v1/schedules", "read"],
  ["GET", "/v1/schedules/{name}", "read"],
  ["GET", "/v1/streams", "read"],
  ["GET", "/v1/streams/{name}", "read"],
  ["GET", "/v1/streams/{name}/capacity", "read"],
  ["GET", "/v1/streams/{name}/dead-letters", "read"],
  // Events, traces, dead letters, usage, billing, read.
  ["GET", "/v1/buses/{bus}/events", "read"],
  ["GET", "/v1/buses/{bus}/events/{id}", "read"],
  ["GET", "/v1/events/{id}/trace", "read"],
  ["GET", "/v1/dead-letters", "read"],
  ["GET", "/v1/dead-letters/{id}", "read"],
  ["GET", "/v1/usage", "read"],
  ["GET", "/v1/billing/periods", "read"],
  ["GET", "/v1/billing/periods/{period}/records", "read"],
  // Changes.
  ["POST", "/v1/buses", "manage"],
  ["DELETE", "/v1/buses/{bus}", "manage"],
  ["POST", "/v1/buses/{bus}/rules", "manage"],
  ["POST", "/v1/buses/{bus}/rules/{name}:enable", "manage"],
  ["POST", "/v1/buses/{bus}/rules/{name}:disable", "manage"],
  ["POST", "/v1/buses/{bus}/rules/{name}:dry-run", "manage"],
  ["PUT", "/v1/buses/{bus}/rules/{name}", "manage"],
  ["DELETE", "/v1/buses/{bus}/rules/{name}", "manage"],
  ["GET", "/v1/buses/{bus}/rules/{rule}/targets/{target}/secrets", "manage"],
  ["POST", "/v1/buses/{bus}/rules/{rule}/targets/{target}/secrets", "manage"],
  ["DELETE", "/v1/buses/{bus}/rules/{rule}/targets/{target}/secrets/{id}", "manage"],
  ["POST", "/v1/buses/{bus}/rules/{rule}/targets/{target}:disable", "manage"],
  ["POST", "/v1/buses/{bus}/rules/{rule}/targets/{target}:enable", "manage"],
  ["POST", "/v1/rules:reload", "manage"],
  ["PUT", "/v1/connections/{name}", "manage"],
  ["DELETE", "/v1/connections/{name}", "manage"],
  ["POST", "/v1/test-event-pattern", "manage"],
  ["POST", "/v1/dead-letters:redrive", "manage"],
  ["POST", "/v1/dead-letters:purge", "manage"],
  ["DELETE", "/v1/dead-letters/{id}", "manage"],
  ["POST", "/v1/archives", "manage"],
  ["DELETE", "/v1/archives/{name}", "manage"],
  ["POST", "/v1/replays", "manage"],
  ["POST", "/v1/replays/{name}:cancel", "manage"],
  ["POST", "/v1/streams", "manage"],
  ["PUT", "/v1/streams/{name}", "manage"],
  ["DELETE", "/v1/streams/{name}", "manage"],
  ["POST", "/v1/streams/{name}:pause", "manage"],
  ["POST", "/v1/streams/{name}:resume", "manage"],
  ["POST", "/v1/streams/{name}:start", "manage"],
  ["POST", "/v1/streams/{name}/dead-letters:redrive", "manage"],
  ["POST", "/v1/streams/{name}/dead-letters:purge", "manage"],
  // Administration.
  ["POST", "/v1/billing/periods/{period}:close", "admin"],
  ["GET", "/v1/keys", "admin"],
  ["POST", "/v1/keys", "admin"],
  ["GET", "/v1/keys/{id}", "admin"],
  ["POST", "/v1/keys/{id}:revoke", "admin"],
  // The audit log shows who holds which key and every change: admin only.
  ["GET", "/v1/audit", "admin"],
  ["GET", "/v1/audit/{id}", "admin"],
];

/** The key-management routes: the ones the loopback bootstrap may call without a key. */
export const KEYS_PATH_PREFIX = "/v1/keys";

interface CompiledRoute {
  method: string;
  path: RegExp;
  need: RouteNeed;
}

/** Action routes (`...:enable`) first, so that `{name}` never swallows `name:enable`. */
const COMPILED: readonly CompiledRoute[] = ROUTE_NEEDS.map(([method, template, need]) => ({
  method,
  path: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{\w+\}/g, "[^/]+")}$`),
  need,
  actions: template.includes(":") ? 0 : 1,
}))
  .sort((a, b) => a.actions - b.actions)
  .map(({ method, path, need }) => ({ method, path, need }));

/** What `method path` needs (`path` without the query); `admin` for a route not in the table. */
export function routeNeed(method: string, path: string): RouteNeed {
  const upper = method === "HEAD" ? "GET" : method.toUpperCase();
  for (const route of COMPILED) {
    if (route.method === upper && route.path.test(path)) return route.need;
  }
  return "admin";
}

/** The scopes that would allow a route, for the message of a 403. */
export function scopesFor(need: RouteNeed, bus?: string): string {
  switch (need) {
    case "publish":
      return bus === undefined ? "publish:<bus>, publish:* or admin" : `publish:${bus}, publish:* or admin`;
    case "read":
      return "read, manage or admin";
    case "manage":
      return "manage or admin";
    default:
      return "admin";
  }
}
