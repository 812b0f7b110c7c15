import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { loadConfig } from "../../src/config/load-config.js";
import { isRelaybusError } from "../../src/errors.js";

/** A directory for one test's config file, removed after the test. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("config - defaults serve on 8080 with data in ./data", () => {
  const config = loadConfig({}, {});
  assert.equal(config.server.port, 8080);
  assert.equal(config.dataDir, "./data");
  assert.equal(config.log.durability, "fsync");
});

test("config - flags win over environment, environment over file", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "relaybus.yaml");
  writeFileSync(file, "server:\n  port: 7000\ndataDir: /from-file\nrulesDir: /rules-file\n");
  const config = loadConfig(
    { config: file, port: "9001" },
    { RELAYBUS_PORT: "9000", RELAYBUS_DATA_DIR: "/from-env" },
  );
  assert.equal(config.server.port, 9001);
  assert.equal(config.dataDir, "/from-env");
  assert.equal(config.rulesDir, "/rules-file");
});

test("config - an unknown key stops loading with its name", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "relaybus.yaml");
  writeFileSync(file, "server:\n  prot: 7000\n");
  assert.throws(
    () => loadConfig({ config: file }, {}),
    (error: unknown) =>
      isRelaybusError(error, "InvalidConfig") && /\/server: unknown setting "prot"/.test(error.message),
  );
});

test("config - a bad value names the field", () => {
  assert.throws(
    () => loadConfig({}, { RELAYBUS_PORT: "99999" }),
    (error: unknown) => isRelaybusError(error, "InvalidConfig") && /\/server\/port/.test(error.message),
  );
  assert.throws(
    () => loadConfig({ port: "eighty" }, {}),
    (error: unknown) => isRelaybusError(error, "InvalidConfig") && /--port/.test(error.message),
  );
});

test("config - --allow-loopback-targets allows deliveries to this machine, which the default refuses", () => {
  assert.equal(loadConfig({}, {}).delivery.outbound.allowLoopback, false);
  assert.equal(loadConfig({ allowLoopbackTargets: true }, {}).delivery.outbound.allowLoopback, true);
});
