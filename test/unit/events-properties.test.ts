import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { percentEncodeHeaderValue } from "../../src/delivery/format-payload.js";
import { isRelaybusError } from "../../src/errors.js";
import { decodeHeaderValue } from "../../src/events/http-binding.js";
import { parseJsonBody } from "../../src/events/json-body.js";
import type { JsonValue } from "../../src/types.js";

/** Reference depth by walking the parsed value: `[]`/`{}` count 1, scalars 0. */
function referenceDepth(value: JsonValue): number {
  if (typeof value !== "object" || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce<number>((max, child) => Math.max(max, referenceDepth(child)), 0);
}

test("json body - the text scan agrees with a walk of the parsed value on random JSON", () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (value, asBuffer) => {
      const text = JSON.stringify(value);
      const depth = referenceDepth(value as JsonValue);
      const body = asBuffer ? Buffer.from(text) : text;
      assert.deepEqual(parseJsonBody(body, { maxJsonDepth: depth }), JSON.parse(text));
      if (depth > 0) {
        assert.throws(() => parseJsonBody(body, { maxJsonDepth: depth - 1 }), (error: unknown) => isRelaybusError(error, "JsonTooDeep"));
      }
    }),
    { numRuns: 500 },
  );
});

test("http binding - what delivery percent-encodes into a ce- header, ingest decodes to the same string", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 40 }), (value) => {
      assert.equal(decodeHeaderValue(percentEncodeHeaderValue(value), "ce-x"), value);
    }),
    { numRuns: 1000 },
  );
});
