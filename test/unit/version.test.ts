import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { RELAYBUS_VERSION } from "../../src/version.js";

test("version - the constant matches package.json", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  assert.equal(RELAYBUS_VERSION, pkg.version);
});
