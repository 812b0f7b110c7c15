/**
 * Checks a stream definition and compiles it: the shape (stream-schema.ts), the source and
 * sink connectors and their configs (each against the connector's own schema), the filter
 * pattern, the transform, and the capacity bounds. Problems come back with JSON pointers,
 * all of them, so a rule file can report each with its line; nothing is thrown for bad input.
 */
import { Ajv, type ValidateFunction } from "ajv";
import type { ConnectorDefinition, SinkDefinition, SourceDefinition } from "../../connectors/index.js";
import type { RelaybusConfig } from "../config/defaults.js";
import type { RetryPolicy } from "../log/log-engine.js";
import { compileEventPattern, type CompiledPattern } from "../patterns/compile-pattern.js";
import { compileBusPattern, resolveRetryPolicy } from "../rules/compile-rule.js";
import { toPointer, type PointerProblem } from "../rules/rule-problem.js";
import { describeAjvErrors } from "../rules/validate-rule.js";
import { compileTransform, type CompiledTransform } from "../transform/compile-transform.js";
import type { JsonObject } from "../types.js";
import {
  connectorOf,
  DEFAULT_BATCH_MAX_BYTES,
  DEFAULT_BATCH_MAX_EVENTS,
  DEFAULT_BATCH_MAX_WAIT_MS,
  type DeadLetterDefinition,
  type StreamBillingMode,
  type StreamDefinition,
  type StreamOrigin,
} from "./stream-model.js";
import { STREAM_DEFINITION_SCHEMA, STREAM_DEFINITION_SCHEMA_ID } from "./stream-schema.js";

/** A stream ready to run. */
export interface CompiledStream {
  name: string;
  definition: StreamDefinition;
  origin: StreamOrigin;
  source: { connector: SourceDefinition<never>; config: JsonObject };
  sink: { connector: SinkDefinition<never>; config: JsonObject };
  filter?: CompiledPattern;
  transform?: CompiledTransform;
  batch: { maxEvents: number; maxBytes: number; maxWaitMs: number };
  capacity: { minCU: number; maxCU: number; billing: StreamBillingMode };
  retry: RetryPolicy;
  deadLetter: DeadLetterDefinition;
  /** Whether it runs when first created. */
  initialState: "running" | "paused";
  /** The definition as canonical JSON: two compilations with the same one need no restart. */
  fingerprint: string;
}

/** What compiling needs besides the definition. */
export interface StreamCompileOptions {
  config: Pick<RelaybusConfig, "limits" | "delivery" | "streams">;
  connectors: readonly ConnectorDefinition[];
  origin: StreamOrigin;
}

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true });
ajv.addSchema(STREAM_DEFINITION_SCHEMA);
const validateShape = ajv.getSchema(STREAM_DEFINITION_SCHEMA_ID) as ValidateFunction;

/** Connectors' schemas are theirs: compiled without strict mode, once per connector. */
const connectorAjv = new Ajv({ allErrors: true, strict: false, verbose: true });
const connectorValidators = new WeakMap<object, ValidateFunction>();
function validatorOf(connector: ConnectorDefinition): ValidateFunction {
  let validate = connectorValidators.get(connector.configSchema);
  if (validate === undefined) {
    validate = connectorAjv.compile(connector.configSchema);
    connectorValidators.set(connector.configSchema, validate);
  }
  return validate;
}

/** Checks and compiles `input`; `stream` is present only when there is no problem. */
export function checkStream(
  input: unknown,
  options: StreamCompileOptions,
): { stream?: CompiledStream; problems: PointerProblem[] } {
  if (!validateShape(input)) {
    return { problems: describeAjvErrors(validateShape.errors ?? [], "InvalidStream") };
  }
  const definition = input as StreamDefinition;
  const problems: PointerProblem[] = [];
  const source = resolveConnector(definition.source, "source", options.connectors, problems);
  const sink = resolveConnector(definition.sink, "sink", options.connectors, problems);

  let filter: CompiledPattern | undefined;
  if (definition.filter !== undefined) {
    const patternProblems: PointerProblem[] = [];
    const pattern = compileBusPattern(definition.filter, options.config, patternProblems);
    // compileBusPattern speaks of rules' `/pattern`; a stream's pattern is its `/filter`.
    problems.push(
      ...patternProblems.map((p) => ({ ...p, pointer: p.pointer.replace(/^\/pattern/, "/filter"), code: p.code ?? "InvalidStream" })),
    );
    if (pattern !== undefined) filter = compileEventPattern(pattern);
  }

  let transform: CompiledTransform | undefined;
  if (definition.transform !== undefined) {
    try {
      transform = compileTransform(definition.transform, { maxTransformBytes: options.config.limits.maxTransformBytes });
    } catch (error) {
      problems.push({ pointer: "/transform", message: (error as Error).message, code: "InvalidTransform" });
    }
  }

  const minCU = definition.capacity?.minCU ?? 1;
  const maxCU = definition.capacity?.maxCU ?? minCU;
  const ceiling = options.config.streams.maxCU;
  if (maxCU < minCU) {
    problems.push({ pointer: "/capacity/maxCU", message: `must be at least minCU (${minCU}), got ${maxCU}`, code: "InvalidStream" });
  }
  if (maxCU > ceiling) {
    problems.push({
      pointer: definition.capacity?.maxCU === undefined ? "/capacity/minCU" : "/capacity/maxCU",
      message: `at most ${ceiling} CU on this server (streams.maxCU), got ${maxCU}`,
      code: "InvalidStream",
    });
  }

  if (problems.length > 0 || source === undefined || sink === undefined) return { problems };
  const stream: CompiledStream = {
    name: definition.name,
    definition,
    origin: options.origin,
    source: source as CompiledStream["source"],
    sink: sink as CompiledStream["sink"],
    ...(filter === undefined ? {} : { filter }),
    ...(transform === undefined ? {} : { transform }),
    batch: {
      maxEvents: definition.batch?.maxEvents ?? DEFAULT_BATCH_MAX_EVENTS,
      maxBytes: definition.batch?.maxBytes ?? DEFAULT_BATCH_MAX_BYTES,
      maxWaitMs: definition.batch?.maxWaitMs ?? DEFAULT_BATCH_MAX_WAIT_MS,
    },
    capacity: { minCU, maxCU, billing: definition.capacity?.billing ?? "cu" },
    retry: resolveRetryPolicy(definition.retry, options.config.delivery.retry),
    deadLetter: definition.deadLetter ?? "store",
    initialState: definition.state ?? "running",
    fingerprint: canonicalJson(definition),
  };
  return { stream, problems };
}

function resolveConnector(
  endpoint: Record<string, JsonObject>,
  kind: "source" | "sink",
  connectors: readonly ConnectorDefinition[],
  problems: PointerProblem[],
): { connector: ConnectorDefinition; config: JsonObject } | undefined {
  const { name, config } = connectorOf(endpoint);
  const connector = connectors.find((c) => c.name === name && c.kind === kind);
  if (connector === undefined) {
    const names = connectors.filter((c) => c.kind === kind).map((c) => c.name);
    problems.push({
      pointer: toPointer([kind, name]),
      message: `no ${kind} connector named ${JSON.stringify(name)}; ${kind}s: ${names.join(", ")}`,
      code: "InvalidStream",
    });
    return undefined;
  }
  const validate = validatorOf(connector);
  if (!validate(config)) {
    const found = describeAjvErrors(validate.errors ?? [], "InvalidStream");
    problems.push(...found.map((p) => ({ ...p, pointer: `${toPointer([kind, name])}${p.pointer}` })));
    return undefined;
  }
  const checked = (connector.check as ((config: JsonObject) => { pointer: string; message: string }[]) | undefined)?.(config) ?? [];
  if (checked.length > 0) {
    problems.push(...checked.map((p) => ({ pointer: `${toPointer([kind, name])}${p.pointer}`, message: p.message, code: "InvalidStream" as const })));
    return undefined;
  }
  return { connector, config };
}

/** JSON with object keys sorted, so that key order does not count as a change. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
