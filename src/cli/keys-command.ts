/**
 * `relaybus keys create|list|revoke`: API keys of a running Relaybus, over its HTTP API
 * (`--url`, `RELAYBUS_URL`; an admin key with `--api-key` or `RELAYBUS_API_KEY`).
 *
 *     relaybus keys create --admin                              # the first key, on the server's machine
 *     relaybus keys create --name shop --scope publish:orders --expires-in 90d
 *     relaybus keys list
 *     relaybus keys revoke 3f9c0a1b2c3d4e5f
 *
 * `create` prints the token and the AWS secret access key once: the server keeps only a hash
 * of the token and a sealed copy of the AWS secret, and never shows either again.
 */
import type { Command } from "commander";
import type { ApiKeyView, CreatedApiKey } from "../api/auth-keys.js";
import { callApi } from "./api-client.js";
import { table } from "./text-format.js";

interface ServerFlags {
  url?: string;
  apiKey?: string;
}

interface CreateFlags extends ServerFlags {
  name?: string;
  scope: string[];
  admin?: boolean;
  expiresIn?: string;
  expiresAt?: string;
  json?: boolean;
}

const DURATION_UNITS_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function registerKeysCommand(program: Command): void {
  const keys = program.command("keys").description("create, list and revoke API keys");

  withServer(keys.command("create").description("create an API key; prints its secrets once"))
    .option("-n, --name <name>", "what the key is for (default: the scopes)")
    .option(
      "-s, --scope <scope>",
      "a scope: publish:<bus>, publish:<prefix>*, publish:*, read, manage, admin (repeat for several)",
      (value: string, list: string[]) => [...list, value],
      [] as string[],
    )
    .option("--admin", "the admin scope (the first key must have it)")
    .option("--expires-in <duration>", "expire after a duration: 90s, 15m, 12h, 30d")
    .option("--expires-at <time>", "expire at an RFC 3339 time")
    .option("--json", "print the server's JSON")
    .action(async (flags: CreateFlags) => {
      const scopes = [...(flags.admin === true ? ["admin"] : []), ...flags.scope];
      if (scopes.length === 0) throw new Error("keys create: give at least one --scope, or --admin");
      const expiresAt = expiryOf(flags);
      const body = { name: flags.name ?? scopes.join(" "), scopes, ...(expiresAt === undefined ? {} : { expiresAt }) };
      const created = (await callApi(flags.url, "POST", "/v1/keys", body, flags.apiKey)) as CreatedApiKey;
      if (flags.json === true) {
        console.log(JSON.stringify(created, null, 2));
        return;
      }
      console.log(`created API key ${created.id} (${created.name}), scopes ${created.scopes.join(", ")}`);
      if (created.expiresAt !== undefined) console.log(`expires ${created.expiresAt}`);
      console.log("\nShown once; store them now:\n");
      console.log(`  RELAYBUS_API_KEY=${created.token}`);
      console.log(`  AWS_ACCESS_KEY_ID=${created.accessKeyId}`);
      console.log(`  AWS_SECRET_ACCESS_KEY=${created.secretAccessKey}`);
    });

  withServer(keys.command("list").description("list API keys (never their secrets)"))
    .option("--json", "print the server's JSON")
    .action(async (flags: ServerFlags & { json?: boolean }) => {
      const { keys: list } = (await callApi(flags.url, "GET", "/v1/keys", undefined, flags.apiKey)) as { keys: ApiKeyView[] };
      if (flags.json === true) {
        console.log(JSON.stringify(list, null, 2));
        return;
      }
      if (list.length === 0) {
        console.log("no API keys (auth is off)");
        return;
      }
      console.log(
        table(
          ["ID", "NAME", "SCOPES", "STATE", "CREATED", "EXPIRES", "LAST USED"],
          list.map((k) => [k.id, k.name, k.scopes.join(","), k.state, k.createdAt, k.expiresAt ?? "-", k.lastUsedAt ?? "-"]),
        ),
      );
    });

  withServer(keys.command("revoke").description("revoke an API key; it stops working at once"))
    .argument("<id>", "the key's id (the part after rb_, before the next _)")
    .action(async (id: string, flags: ServerFlags) => {
      const key = (await callApi(flags.url, "POST", `/v1/keys/${encodeURIComponent(id)}:revoke`, undefined, flags.apiKey)) as ApiKeyView;
      console.log(`revoked API key ${key.id} (${key.name}) at ${key.revokedAt ?? "?"}`);
    });
}

function withServer(command: Command): Command {
  return command
    .option("--url <url>", "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)")
    .option("--api-key <key>", "an admin API key rb_... (also RELAYBUS_API_KEY; none needed for the first key)");
}

/** `--expires-at` as given, or `--expires-in` from now, as RFC 3339; undefined without either. */
function expiryOf(flags: CreateFlags): string | undefined {
  if (flags.expiresAt !== undefined && flags.expiresIn !== undefined) {
    throw new Error("keys create: give --expires-in or --expires-at, not both");
  }
  if (flags.expiresAt !== undefined) return flags.expiresAt;
  if (flags.expiresIn === undefined) return undefined;
  const match = /^(\d+)([smhd])$/.exec(flags.expiresIn.trim());
  if (match === null) throw new Error(`--expires-in: expected a number and a unit (90s, 15m, 12h, 30d), got ${JSON.stringify(flags.expiresIn)}`);
  const unit = match[2] as keyof typeof DURATION_UNITS_MS;
  return new Date(Date.now() + Number(match[1]) * DURATION_UNITS_MS[unit]).toISOString();
}
