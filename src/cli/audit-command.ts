/**
 * `relaybus audit`: the changes a running Relaybus recorded, newest first, over its HTTP API
 * (`GET /v1/audit`; `--url`, `RELAYBUS_URL`; an admin key with `--api-key` or
 * `RELAYBUS_API_KEY` once auth is on).
 *
 *     relaybus audit                                     # the last 24 hours
 *     relaybus audit --since 7d --actor root --action rule.*
 *     relaybus audit --resource buses/orders --json      # one bus, its rules and targets
 *
 * Exit status 1 when the server refuses the request (a bad filter, no admin key).
 */
import type { Command } from "commander";
import type { AuditActor } from "../log/audit-store.js";
import type { AuditEntryView } from "../api/routes/audit-routes.js";
import { callApi } from "./api-client.js";
import { isoSeconds, table, truncate } from "./text-format.js";
import { parseWhen } from "./usage-command.js";

interface AuditFlags {
  since: string;
  until?: string;
  actor?: string;
  action?: string;
  resource?: string;
  limit: string;
  json?: boolean;
  url?: string;
  apiKey?: string;
}

/** Most entries one page of `GET /v1/audit` answers. */
const PAGE_LIMIT = 1000;

export function registerAuditCommand(program: Command): void {
  program
    .command("audit")
    .description(
      "show the audit log: who changed buses, rules, targets, connections, keys... and when",
    )
    .option(
      "--since <when>",
      "from: a duration ago (90m, 24h, 7d), a date or an RFC 3339 time",
      "24h",
    )
    .option(
      "--until <when>",
      "to (exclusive): a duration ago, a date or an RFC 3339 time (default now)",
    )
    .option("--actor <actor>", "an API key's id or name, or local, anonymous, rule-files")
    .option("--action <action>", "an action (rule.create) or a family (rule.*)")
    .option(
      "--resource <path>",
      "a resource and what is under it (buses/orders, connections/partner)",
    )
    .option("--limit <n>", "most entries shown", "100")
    .option("--json", "print the entries as JSON")
    .option("--url <url>", "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)")
    .option("--api-key <key>", "an admin API key rb_... (also RELAYBUS_API_KEY)")
    .action(async (flags: AuditFlags) => {
      const limit = Number(flags.limit);
      if (!Number.isSafeInteger(limit) || limit < 1)
        throw new Error(`--limit: expected a positive integer, got ${JSON.stringify(flags.limit)}`);
      const query = new URLSearchParams({ from: parseWhen(flags.since, "--since") });
      if (flags.until !== undefined) query.set("to", parseWhen(flags.until, "--until"));
      if (flags.actor !== undefined) query.set("actor", flags.actor);
      if (flags.action !== undefined) query.set("action", flags.action);
      if (flags.resource !== undefined) query.set("resource", flags.resource);
      const entries = await fetchEntries(flags, query, limit);
      if (flags.json === true) {
        console.log(JSON.stringify(entries, null, 2));
        return;
      }
      if (entries.length === 0) {
        console.log(`no audit entries since ${query.get("from") ?? "?"}`);
        return;
      }
      console.log(
        table(
          ["TIME", "ACTOR", "ACTION", "RESOURCE", "OUTCOME", "REQUEST"],
          entries.map((e) => [
            isoSeconds(e.atMs),
            actorText(e.actor),
            e.action,
            truncate(e.resource, 80),
            e.outcome,
            e.requestId ?? "-",
          ]),
        ),
      );
    });
}

/** Up to `limit` entries, following `nextBefore` across pages. */
async function fetchEntries(
  flags: AuditFlags,
  query: URLSearchParams,
  limit: number,
): Promise<AuditEntryView[]> {
  const entries: AuditEntryView[] = [];
  let before: number | undefined;
  while (entries.length < limit) {
    const page = new URLSearchParams(query);
    page.set("limit", String(Math.min(PAGE_LIMIT, limit - entries.length)));
    if (before !== undefined) page.set("before", String(before));
    const answer = (await callApi(
      flags.url,
      "GET",
      `/v1/audit?${page}`,
      undefined,
      flags.apiKey,
    )) as {
      entries: AuditEntryView[];
      nextBefore?: number;
    };
    entries.push(...answer.entries);
    if (answer.nextBefore === undefined) break;
    before = answer.nextBefore;
  }
  return entries;
}

function actorText(actor: AuditActor): string {
  if (actor.kind !== "api-key") return actor.kind;
  return actor.name === undefined ? actor.id : `${actor.name} (${actor.id})`;
}
