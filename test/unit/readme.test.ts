/** The README's reference tables cannot drift from the code: every error code and setting is there. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { ERROR_STATUS } from "../../src/errors.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

test("readme - the error table lists every code with its status", () => {
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    assert.match(readme, new RegExp(`^\\| \`${code}\` \\| ${status} \\|`, "m"), `README error table: ${code} ${status}`);
  }
});

test("readme - the configuration table names every setting", () => {
  const leaves: string[] = [];
  const walk = (value: unknown, path: string) => {
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      if (path === "delivery.retry") {
        leaves.push("delivery.retry.*");
        return;
      }
      for (const [key, inner] of Object.entries(value)) walk(inner, path === "" ? key : `${path}.${key}`);
    } else {
      leaves.push(path);
    }
  };
  walk(DEFAULT_CONFIG, "");
  for (const leaf of leaves) {
    assert.ok(readme.includes(`| \`${leaf}\` |`), `README configuration table: ${leaf}`);
  }
});
