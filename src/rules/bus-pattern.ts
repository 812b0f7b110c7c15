/**
 * Rules on a bus see the CloudEvent, but AWS-style patterns name its parts `detail-type`
 * and `detail`. So that those patterns work unchanged (DESIGN section 3), the two are
 * renamed to `type` and `data` once, when the rule compiles; the matcher itself knows only
 * one vocabulary and pays nothing per event.
 */
import type { JsonObject, JsonValue } from "../types.js";
import { toPointer, type PointerProblem } from "./rule-problem.js";

/** The AWS names of CloudEvent attributes a bus pattern may use, and what they mean. */
export const AWS_PATTERN_KEYS: Readonly<Record<string, string>> = {
  "detail-type": "type",
  detail: "data",
};

interface KeyUse {
  /** The attribute in AWS words (`detail`) or CloudEvent words (`data`) as written. */
  key: string;
  path: (string | number)[];
}

/**
 * Translates the top-level `detail-type` and `detail` keys of a pattern to `type` and
 * `data`: at the top level and inside top-level `$or` alternatives (themselves top-level
 * patterns), including flattened keys (`"detail.total"` becomes `"data.total"`, since the
 * pattern language treats `{"a": {"b": ..}}` and `{"a.b": ..}` alike).
 *
 * A pattern that names one attribute in both vocabularies (`detail` and `data`) is refused
 * with a problem naming both: mixing them is either a mistake or unreadable. Pointers are
 * relative to the pattern. Everything else (shape, grammar) is left to the pattern parser.
 */
export function toBusPattern(
  pattern: JsonObject,
): { pattern: JsonObject; problems: [] } | { pattern?: undefined; problems: PointerProblem[] } {
  const uses = new Map<string, { aws?: KeyUse; cloudEvents?: KeyUse }>();
  const translated = translateLevel(pattern, [], uses);
  const problems: PointerProblem[] = [];
  for (const [attribute, { aws, cloudEvents }] of uses) {
    if (aws === undefined || cloudEvents === undefined) continue;
    problems.push({
      pointer: toPointer(aws.path),
      message: `pattern uses both ${JSON.stringify(aws.key)} (at ${toPointer(aws.path)}) and ${JSON.stringify(cloudEvents.key)} (at ${toPointer(cloudEvents.path)}); on a bus ${JSON.stringify(rootOf(aws.key))} means ${JSON.stringify(attribute)}, so use one of them`,
      code: "InvalidEventPattern",
    });
  }
  return problems.length > 0 ? { problems } : { pattern: translated, problems: [] };
}

function translateLevel(
  pattern: JsonObject,
  path: (string | number)[],
  uses: Map<string, { aws?: KeyUse; cloudEvents?: KeyUse }>,
): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(pattern)) {
    if (key === "$or" && Array.isArray(value)) {
      out[key] = value.map((alternative, index) =>
        isObject(alternative)
          ? translateLevel(alternative, [...path, key, index], uses)
          : alternative,
      );
      continue;
    }
    const root = rootOf(key);
    const rest = key.slice(root.length);
    const attribute = AWS_PATTERN_KEYS[root];
    if (attribute !== undefined) {
      const entry = uses.get(attribute) ?? {};
      entry.aws ??= { key, path: [...path, key] };
      uses.set(attribute, entry);
      out[`${attribute}${rest}`] = value;
      continue;
    }
    if (Object.values(AWS_PATTERN_KEYS).includes(root)) {
      const entry = uses.get(root) ?? {};
      entry.cloudEvents ??= { key, path: [...path, key] };
      uses.set(root, entry);
    }
    out[key] = value;
  }
  return out;
}

/** The first segment of a possibly flattened key: `detail.total` → `detail`. */
function rootOf(key: string): string {
  const dot = key.indexOf(".");
  return dot < 0 ? key : key.slice(0, dot);
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
