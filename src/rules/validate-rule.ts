/**
 * Checks the shape of rule files and rules against the JSON Schema (ajv, `allErrors`), and
 * turns ajv's errors into problems that name the key and the fix.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { NAME_PATTERN } from "./model.js";
import { toPointer, type PointerProblem } from "./rule-problem.js";
import {
  RULE_DEFINITION_SCHEMA,
  RULE_DEFINITION_SCHEMA_ID,
  RULE_FILE_SCHEMA,
  RULE_FILE_SCHEMA_ID,
  WEBHOOK_URL_PATTERN,
} from "./rule-schema.js";

// `verbose` gives each error its schema and data, which the messages below quote.
// `strictRequired` is off because the `if`/`then` of a target requires keys that the
// target's `properties` define one level up, which that check cannot see.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true });
ajv.addSchema(RULE_FILE_SCHEMA);
ajv.addSchema(RULE_DEFINITION_SCHEMA);
const validateFile = ajv.getSchema(RULE_FILE_SCHEMA_ID) as ValidateFunction;
const validateDefinition = ajv.getSchema(RULE_DEFINITION_SCHEMA_ID) as ValidateFunction;

/**
 * Problems with the shape of a rule file (schema, and unique target ids within each rule);
 * an empty list when the shape is right. The pattern grammar and transforms are checked when
 * the rule compiles.
 */
export function validateRuleFileShape(value: unknown): PointerProblem[] {
  const problems = validateFile(value) ? [] : describeAjvErrors(validateFile.errors ?? []);
  const rules = (value as { rules?: unknown } | null)?.rules;
  if (Array.isArray(rules)) {
    rules.forEach((rule, index) => problems.push(...duplicateTargetIds(rule, ["rules", index])));
  }
  return problems;
}

/** Problems with the shape of one rule (the body of the rules API); empty when right. */
export function validateRuleDefinitionShape(value: unknown): PointerProblem[] {
  const problems = validateDefinition(value)
    ? []
    : describeAjvErrors(validateDefinition.errors ?? []);
  problems.push(...duplicateTargetIds(value, []));
  return problems;
}

function duplicateTargetIds(rule: unknown, base: (string | number)[]): PointerProblem[] {
  const targets = (rule as { targets?: unknown } | null)?.targets;
  if (!Array.isArray(targets)) return [];
  const seen = new Map<string, number>();
  const problems: PointerProblem[] = [];
  targets.forEach((target, index) => {
    const id = (target as { id?: unknown } | null)?.id;
    if (typeof id !== "string") return;
    const first = seen.get(id);
    if (first === undefined) {
      seen.set(id, index);
      return;
    }
    problems.push({
      pointer: toPointer([...base, "targets", index, "id"]),
      message: `duplicate target id ${JSON.stringify(id)} (first at ${toPointer([...base, "targets", first])}); target ids are unique within a rule`,
      code: "InvalidRule",
    });
  });
  return problems;
}

function describeAjvErrors(errors: readonly ErrorObject[]): PointerProblem[] {
  const seen = new Set<string>();
  const problems: PointerProblem[] = [];
  for (const error of errors) {
    const described = describeAjvError(error);
    if (described === undefined) continue;
    const key = `${described.pointer}\n${described.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ ...described, code: "InvalidRule" });
  }
  return problems;
}

/** One ajv error as a pointer and a message, or undefined for errors that only echo another. */
function describeAjvError(error: ErrorObject): { pointer: string; message: string } | undefined {
  const pointer = error.instancePath;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "if":
    case "propertyNames":
      // `if` only says a `then` failed, and `propertyNames` repeats the name's own error;
      // the specific errors come separately.
      return undefined;
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((error.parentSchema as { properties?: object }).properties ?? {});
      return {
        pointer: `${pointer}${toPointer([key])}`,
        message: `unknown key ${JSON.stringify(key)}${allowed.length > 0 ? ` (expected one of: ${allowed.join(", ")})` : ""}`,
      };
    }
    case "required": {
      const missing = String(params.missingProperty);
      if (error.schemaPath.endsWith("/then/required") && missing === "transform") {
        return {
          pointer: `${pointer}/format`,
          message: `format "transform" needs a "transform" expression`,
        };
      }
      return { pointer, message: `missing required key ${JSON.stringify(missing)}` };
    }
    case "not":
      // The only `not` in the schema: a transform given with another format.
      return {
        pointer: `${pointer}/transform`,
        message: `a transform is only used with format "transform", but format is ${JSON.stringify((error.data as { format?: unknown }).format)}; set format: transform or remove the transform`,
      };
    case "pattern": {
      const got = JSON.stringify(error.data);
      if (params.pattern === WEBHOOK_URL_PATTERN) {
        return { pointer, message: `must be an http or https URL, got ${got}` };
      }
      if (params.pattern === NAME_PATTERN.source) {
        return { pointer, message: `must be 1 to 64 letters, digits, '.', '_' or '-', got ${got}` };
      }
      if (error.propertyName !== undefined) {
        return {
          pointer: `${pointer}${toPointer([error.propertyName])}`,
          message: `${JSON.stringify(error.propertyName)} is not a valid HTTP header name`,
        };
      }
      return { pointer, message: `must match ${String(params.pattern)}, got ${got}` };
    }
    case "enum": {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ");
      return { pointer, message: `must be one of ${allowed}, got ${JSON.stringify(error.data)}` };
    }
    case "maxItems":
      return {
        pointer,
        message: `at most ${String(params.limit)} ${pointer.endsWith("/targets") ? "targets" : "items"}, got ${(error.data as unknown[]).length}`,
      };
    case "type":
      return {
        pointer,
        message: `must be ${String(params.type)}, got ${describeType(error.data)}`,
      };
    default:
      return {
        pointer,
        message: `${error.message ?? "is invalid"}, got ${JSON.stringify(error.data)}`,
      };
  }
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return "object";
  return `${typeof value} ${JSON.stringify(value)}`;
}
