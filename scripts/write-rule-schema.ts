/**
 * Writes the rule-file JSON Schema to `rules/schema.json`, for editors: a rule file that
 * starts with `# yaml-language-server: $schema=./schema.json` gets completion and checks.
 * Usage: `npx tsx scripts/write-rule-schema.ts [path]`. A unit test fails when the committed
 * file differs from what this writes, so run it after changing src/rules/rule-schema.ts.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RULE_FILE_SCHEMA } from "../src/rules/rule-schema.js";

/** The text of `rules/schema.json`: the schema as two-space-indented JSON and a newline. */
export function ruleSchemaText(): string {
  return `${JSON.stringify(RULE_FILE_SCHEMA, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = process.argv[2] ?? "rules/schema.json";
  writeFileSync(path, ruleSchemaText());
  console.log(`wrote ${path}`);
}
