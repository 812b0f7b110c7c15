/**
 * `relaybus keys` and the safe defaults with the real command (child processes through tsx):
 * the bootstrap `keys create --admin` on the machine itself, `keys list` with
 * `RELAYBUS_API_KEY`, `put --api-key`, `keys revoke`; and `relaybus serve` on 0.0.0.0 without
 * keys refusing to start, unless `--allow-unauthenticated`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort } from "../helpers/relaybus-process.js";
import { CLI_ENTRY, runCli, type CliRun } from "../helpers/run-cli.js";
import { startTestService, type TestService } from "../helpers/service.js";



/** Runs the real command; without `RELAYBUS_API_KEY` in `env`, the caller's is not passed on. */
function relaybus(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, { RELAYBUS_API_KEY: undefined, ...env });
}

describe("relaybus keys", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ rules: { "orders.yaml": "bus: orders\nrules: []\n" } });
  });
  after(async () => {
    await service.close();
  });

  test("cli keys - bootstrap, list, put with a key, revoke", async () => {
    const url = { RELAYBUS_URL: service.url };
    const refused = await relaybus(["keys", "create", "--scope", "read"], url);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ValidationError: scopes: the first key must have the admin scope/);

    const created = await relaybus(["keys", "create", "--admin", "--name", "root", "--json"], url);
    assert.equal(created.code, 0, created.stderr);
    const root = JSON.parse(created.stdout) as { id: string; token: string };
    assert.match(root.token, /^rb_/);

    const denied = await relaybus(["keys", "list"], url);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Unauthorized: GET \/v1\/keys: no API key/);

    const publisher = await relaybus(["keys", "create", "--scope", "publish:orders", "--expires-in", "30d", "--api-key", root.token], url);
    assert.equal(publisher.code, 0, publisher.stderr);
    assert.match(publisher.stdout, /Shown once/);
    const token = /RELAYBUS_API_KEY=(rb_\S+)/.exec(publisher.stdout)?.[1];
    assert.ok(token !== undefined, publisher.stdout);
    assert.match(publisher.stdout, /AWS_ACCESS_KEY_ID=AKRB[0-9A-F]{16}/);
    const id = token.split("_")[1]!;

    const listed = await relaybus(["keys", "list"], { ...url, RELAYBUS_API_KEY: root.token });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${id}\\s+publish:orders\\s+publish:orders\\s+active`));
    assert.ok(!listed.stdout.includes(token.slice(20)), "no secret in the list");

    const put = await relaybus(["put", "--bus", "orders", "--source", "cli.auth", "--type", "t", "--api-key", token], url);
    assert.equal(put.code, 0, put.stdout + put.stderr);
    // The CloudEvent `put` makes carries a time-ordered UUIDv7 id, as ingest gives PutEvents entries.
    assert.match(put.stdout, /"id": "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"/);
    const other = await relaybus(["put", "--bus", "default", "--source", "cli.auth", "--type", "t", "--api-key", token], url);
    assert.equal(other.code, 1);
    assert.match(other.stdout, /Forbidden/);

    const revoked = await relaybus(["keys", "revoke", id], { ...url, RELAYBUS_API_KEY: root.token });
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`revoked API key ${id}`));
    const after = await relaybus(["put", "--bus", "orders", "--source", "cli.auth", "--type", "t"], { ...url, RELAYBUS_API_KEY: token });
    assert.equal(after.code, 1);
    assert.match(after.stdout, /Unauthorized/);
  });
});

describe("relaybus serve - safe defaults", () => {
  test("cli serve - on 0.0.0.0 without keys it refuses to start, naming the ways out; --allow-unauthenticated starts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "relaybus-auth-cli-"));
    mkdirSync(join(dir, "rules"));
    try {
      const port = await freePort();
      const args = ["serve", "--host", "0.0.0.0", "--port", String(port), "--data-dir", join(dir, "data"), "--rules-dir", join(dir, "rules")];
      const refused = await relaybus(args);
      assert.equal(refused.code, 2, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /server.host 0.0.0.0 is not a loopback address and no API key exists/);
      assert.match(refused.stderr, /--allow-unauthenticated/);

      const child = spawn(process.execPath, ["--import", "tsx", CLI_ENTRY, ...args, "--allow-unauthenticated"], { stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      try {
        const deadline = Date.now() + 20_000;
        let up = false;
        while (!up && Date.now() < deadline && child.exitCode === null) {
          up = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
          if (!up) await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(up, output);
        assert.match(output, /auth is off and server.host 0.0.0.0 is not loopback/);
      } finally {
        child.kill("SIGTERM");
        await exited;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
