/**
 * Checks the shape of rule files and rules against the JSON Schema (ajv, `allErrors`), and
 * turns ajv's errors into problems that name the key and the fix.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { processEnvironment, type EnvironmentLookup } from "../config/environment.js";
import type { ErrorCode } from "../errors.js";
import {
  connectionSecretValues,
  resolveConnectionValue,
  type ConnectionDefinition,
} from "../log/connection-store.js";
import { NAME_PATTERN } from "./model.js";
import { toPointer, type PointerProblem } from "./rule-problem.js";
import {
  CONNECTION_DEFINITION_SCHEMA,
  CONNECTION_DEFINITION_SCHEMA_ID,
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
ajv.addSchema(CONNECTION_DEFINITION_SCHEMA);
const validateFile = ajv.getSchema(RULE_FILE_SCHEMA_ID) as ValidateFunction;
const validateDefinition = ajv.getSchema(RULE_DEFINITION_SCHEMA_ID) as ValidateFunction;
const validateConnection = ajv.getSchema(CONNECTION_DEFINITION_SCHEMA_ID) as ValidateFunction;

/**
 * Problems with the shape of a rule file (schema, and unique target ids within each rule);
 * an empty list when the shape is right. The pattern grammar and transforms are checked when
 * the rule compiles.
 */
export function validateRuleFileShape(value: unknown, env: EnvironmentLookup = processEnvironment): PointerProblem[] {
  const problems = validateFile(value) ? [] : describeAjvErrors(validateFile.errors ?? []);
  const rules = (value as { rules?: unknown } | null)?.rules;
  if (Array.isArray(rules)) {
    rules.forEach((rule, index) => problems.push(...duplicateTargetIds(rule, ["rules", index])));
  }
  const connections = (value as { connections?: unknown } | null)?.connections;
  if (Array.isArray(connections)) {
    connections.forEach((connection, index) => {
      const base = toPointer(["connections", index]);
      // A connection whose shape is wrong is not checked further: its fields may be missing.
      if (problems.some((p) => p.pointer === base || p.pointer.startsWith(`${base}/`))) return;
      const found = connectionProblems(connection as ConnectionDefinition, env, "InvalidRule");
      problems.push(...found.map((p) => ({ ...p, pointer: `${base}${p.pointer}` })));
    });
  }
  return problems;
}

/**
 * Problems with a connection (the body of `PUT /v1/connections/{name}`), coded
 * `InvalidConnection`: its shape, the headers it may not set, and every `env:NAME` it names
 * being set in `env`. Empty when right. Messages never quote a secret.
 */
export function validateConnectionDefinitionShape(
  value: unknown,
  env: EnvironmentLookup = processEnvironment,
): PointerProblem[] {
  if (!validateConnection(value)) return describeAjvErrors(validateConnection.errors ?? [], "InvalidConnection");
  return connectionProblems(value as ConnectionDefinition, env, "InvalidConnection");
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

/** Turns ajv's errors into problems that name the key and the fix (values that may hold secrets left out). */
export function describeAjvErrors(errors: readonly ErrorObject[], code: ErrorCode = "InvalidRule"): PointerProblem[] {
  const seen = new Set<string>();
  const problems: PointerProblem[] = [];
  for (const error of errors) {
    const described = describeAjvError(error);
    if (described === undefined) continue;
    if (mayHoldSecret(error.instancePath, code)) described.message = withoutValue(described.message, error.data);
    const key = `${described.pointer}\n${described.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ ...described, code });
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
    case "const":
      // The only `const` whose failure is reported: `pacing.circuitBreaker`'s `else`.
      return {
        pointer,
        message: `must be ${JSON.stringify(params.allowedValue)} or an object, got ${JSON.stringify(error.data)}`,
      };
    case "minProperties":
    case "maxProperties": {
      const keys = Object.keys(error.data as object);
      if (pointer.endsWith("/authorization")) {
        return {
          pointer,
          message: `needs exactly one of apiKey, basic, oauth2, got ${keys.length === 0 ? "none" : keys.join(", ")}`,
        };
      }
      return { pointer, message: `at most ${String(params.limit)} entries, got ${keys.length}` };
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

/**
 * Header names a connection may not set: those Relaybus sets on every request itself
 * (Standard Webhooks' `webhook-*`, the body's `content-type`, CloudEvents' `ce-*`), which a
 * connection must not be able to forge, and the ones that frame the HTTP message.
 */
const RESERVED_CONNECTION_HEADER =
  /^(webhook-id|webhook-timestamp|webhook-signature|content-type|content-length|transfer-encoding|host|connection)$|^ce-/i;

/** Form parameters of the token request that the connection's own fields set. */
const RESERVED_TOKEN_PARAMETERS = ["grant_type", "client_id", "client_secret", "scope", "audience"];

/**
 * What the schema cannot say about a connection whose shape is right: reserved header names,
 * a header that its authorization sets too, token parameters set twice, and unset `env:`
 * variables. Pointers are relative to the connection.
 */
function connectionProblems(connection: ConnectionDefinition, env: EnvironmentLookup, code: ErrorCode): PointerProblem[] {
  const problems: PointerProblem[] = [];
  const problem = (segments: (string | number)[], message: string) =>
    problems.push({ pointer: toPointer(segments), message, code });
  const auth = connection.authorization;
  const authHeader = "apiKey" in auth ? auth.apiKey.header : "authorization";
  if ("basic" in auth && auth.basic.username.includes(":")) {
    problem(["authorization", "basic", "username"], "must not contain ':' (RFC 7617: it separates the user name from the password)");
  }
  if ("apiKey" in auth && RESERVED_CONNECTION_HEADER.test(auth.apiKey.header)) {
    problem(["authorization", "apiKey", "header"], reservedHeaderMessage(auth.apiKey.header));
  }
  for (const name of Object.keys(connection.headers ?? {})) {
    if (RESERVED_CONNECTION_HEADER.test(name)) problem(["headers", name], reservedHeaderMessage(name));
    else if (name.toLowerCase() === authHeader.toLowerCase()) {
      problem(["headers", name], `${JSON.stringify(name)} is set by the connection's authorization; remove it from headers`);
    }
  }
  if ("oauth2" in auth) {
    for (const name of Object.keys(auth.oauth2.extraParams ?? {})) {
      if (!RESERVED_TOKEN_PARAMETERS.includes(name)) continue;
      problem(
        ["authorization", "oauth2", "extraParams", name],
        `${JSON.stringify(name)} is set by the oauth2 fields (tokenUrl, clientId, clientSecret, scope, audience); remove it from extraParams`,
      );
    }
  }
  for (const secret of connectionSecretValues(connection)) {
    try {
      resolveConnectionValue(secret.value, env);
    } catch (error) {
      problem([...secret.path], (error as Error).message);
    }
  }
  return problems;
}

function reservedHeaderMessage(name: string): string {
  return `${JSON.stringify(name)} is a header Relaybus sets itself (webhook-id, webhook-timestamp, webhook-signature, content-type, ce-*, and the message framing ones); a connection cannot set it`;
}

/**
 * True when an error at `pointer` may be about a secret, so its message must not quote the
 * value: anything in a connection but its name, description and oauth2 method.
 */
function mayHoldSecret(pointer: string, code: ErrorCode): boolean {
  const inFile = /^\/connections\/\d+(\/.*)?$/.exec(pointer);
  if (code !== "InvalidConnection" && inFile === null) return false;
  const relative = code === "InvalidConnection" ? pointer : (inFile?.[1] ?? "");
  return !["/name", "/description", "/authorization/oauth2/method"].includes(relative);
}

/** `message` with the quoted value at its end (`got "..."`) replaced by the value's type. */
function withoutValue(message: string, value: unknown): string {
  for (const quoted of [JSON.stringify(value), describeType(value)]) {
    if (quoted !== undefined && message.endsWith(`got ${quoted}`)) {
      const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
      return `${message.slice(0, message.length - quoted.length)}${kind} (value not shown)`;
    }
  }
  return message;
}
