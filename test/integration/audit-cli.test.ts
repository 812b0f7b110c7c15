/**
 * `relaybus audit` with the real command (a child process through tsx) against a real
 * service: the table, the JSON, the filters, and the refusal without an admin key.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli, type CliRun } from "../helpers/run-cli.js";
import { startTestService, type TestService } from "../helpers/service.js";

/** Runs the real command without the caller's `RELAYBUS_API_KEY`. */
function relaybus(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, { RELAYBUS_API_KEY: undefined, ...env });
}

describe("relaybus audit", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
    for (const name of ["cli-a", "cli-b"])
      assert.equal((await service.post("/v1/buses", { name })).status, 201);
    const rule = { name: "r1", pattern: { source: ["x"] }, targets: [] };
    assert.equal((await service.post("/v1/buses/cli-a/rules", rule)).status, 201);
  });
  after(async () => {
    await service.close();
  });

  test("cli audit - a table of the changes, newest first; --json with filters; an admin key once auth is on", async () => {
    const url = { RELAYBUS_URL: service.url };
    const text = await relaybus(["audit"], url);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^TIME\s+ACTOR\s+ACTION\s+RESOURCE\s+OUTCOME\s+REQUEST$/);
    assert.match(
      lines[1] ?? "",
      /^\d{4}-\d{2}-\d{2}T\S+Z\s+local\s+rule\.create\s+buses\/cli-a\/rules\/r1\s+succeeded\s+\S+$/,
    );
    assert.match(lines[3] ?? "", /\sbus\.create\s+buses\/cli-a\s/);
    assert.equal(lines.length, 4);

    const json = await relaybus(
      ["audit", "--since", "1h", "--resource", "buses/cli-a", "--action", "bus.*", "--json"],
      url,
    );
    assert.equal(json.code, 0, json.stderr);
    const entries = JSON.parse(json.stdout) as {
      action: string;
      resource: string;
      after: { name: string };
    }[];
    assert.deepEqual(
      entries.map((e) => [e.action, e.resource, e.after.name]),
      [["bus.create", "buses/cli-a", "cli-a"]],
    );

    const key = (await (
      await service.post("/v1/keys", { name: "root", scopes: ["admin"] })
    ).json()) as { token: string };
    const refused = await relaybus(["audit"], url);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Unauthorized: GET \/v1\/audit: no API key/);
    const keyed = await relaybus(["audit", "--actor", "local", "--limit", "1", "--json"], {
      ...url,
      RELAYBUS_API_KEY: key.token,
    });
    assert.equal(keyed.code, 0, keyed.stderr);
    const [newest] = JSON.parse(keyed.stdout) as { action: string; actor: { kind: string } }[];
    assert.equal(newest?.action, "key.create", "the bootstrap key, made without a key");
    assert.equal(newest?.actor.kind, "local");
  });
});
