/**
 * Writes the rule-file JSON Schema to `rules/schema.json`, for editors: a rule file that
 * starts with `# yaml-language-server: $schema=./schema.json` gets completion and checks.
 * Usage: `npx tsx scripts/write-rule-schema.ts [path]`. A unit test fails when the committed
 * file differs from what this writes, so run it after changing src/rules/rule-schema.ts,
 * src/streams/stream-schema.ts or src/streams/schedule-model.ts.
 *
 * The server checks a file's `streams:` and `schedules:` with the streams layer's schemas;
 * here they are put inside the rule file's schema so that an editor checks them too (a
 * connector's own config is checked by the server only).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RULE_FILE_SCHEMA } from "../src/rules/rule-schema.js";
import { SCHEDULE_DEFINITION_SCHEMA } from "../src/streams/schedule-model.js";
import { STREAM_DEFINITION_SCHEMA } from "../src/streams/stream-schema.js";

/** A schema to sit inside another: without its own `$schema`, `$id` and `definitions`. */
function embedded(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _schema, $id: _id, definitions: _definitions, ...rest } = schema;
  return rest;
}

/** The text of `rules/schema.json`: the schema as two-space-indented JSON and a newline. */
export function ruleSchemaText(): string {
  const schema = structuredClone(RULE_FILE_SCHEMA) as unknown as { properties: Record<string, { items: unknown }> };
  // The stream schema's $refs (name, description, retry) resolve against the rule file's definitions.
  schema.properties.streams!.items = embedded(STREAM_DEFINITION_SCHEMA);
  schema.properties.schedules!.items = embedded(SCHEDULE_DEFINITION_SCHEMA);
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = process.argv[2] ?? "rules/schema.json";
  writeFileSync(path, ruleSchemaText());
  console.log(`wrote ${path}`);
}
