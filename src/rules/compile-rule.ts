/**
 * Turns a rule definition into what routing runs: the pattern compiled with bus semantics,
 * each target's transform compiled, and every default resolved, so nothing about a rule is
 * looked up or parsed per event.
 */
import type { RelaybusConfig } from "../config/defaults.js";
import { processEnvironment, type EnvironmentLookup } from "../config/environment.js";
import type { RoutedTarget, TargetPacing } from "../delivery/router.js";
import { RelaybusError } from "../errors.js";
import type { RetryPolicy } from "../log/log-engine.js";
import { compileEventPattern, type CompiledPattern } from "../patterns/compile-pattern.js";
import { parseEventPattern, type PatternLimits } from "../patterns/parse-pattern.js";
import { patternSizeError } from "../patterns/pattern-limits.js";
import type { EventPattern } from "../patterns/pattern-types.js";
import { compileTransform } from "../transform/compile-transform.js";
import { transformSizeError } from "../transform/transform-limits.js";
import type { CloudEvent, JsonObject, JsonValue, TargetFormat } from "../types.js";
import { toBusPattern } from "./bus-pattern.js";
import type { RuleDefinition, RuleOrigin, TargetDefinition } from "./model.js";
import { toPointer, type PointerProblem } from "./rule-problem.js";
import { resolveSigningSecrets } from "./signing-secrets.js";
import { validateRuleDefinitionShape } from "./validate-rule.js";

/** A rule ready to route: immutable, shared by every snapshot that holds it. */
export interface CompiledRule {
  readonly bus: string;
  readonly name: string;
  /** The definition as written (file) or sent (API); what `GET` returns. */
  readonly definition: RuleDefinition;
  /** `definition.enabled`, default true. A disabled rule is kept but never routed. */
  readonly enabled: boolean;
  readonly origin: RuleOrigin;
  /**
   * The checked pattern in bus vocabulary (`detail` already `data`): what the bus's pattern
   * machine is built from.
   */
  readonly pattern: EventPattern;
  /**
   * True when the event matches the rule's pattern, by the rule's own compiled matcher (made on
   * first use). Routing asks the bus's machine instead; this serves one-rule questions.
   */
  matches(event: CloudEvent): boolean;
  /** The rule's targets, resolved, in definition order. Shared: callers must not mutate. */
  readonly targets: readonly RoutedTarget[];
}

/** What compiling needs from the configuration. */
export type RuleCompileConfig = Pick<RelaybusConfig, "limits" | "delivery">;

/** The default target format: the whole event as structured-mode CloudEvents JSON. */
export const DEFAULT_TARGET_FORMAT: TargetFormat = "cloudevents-structured";

/** Options of {@link checkRule} and {@link compileRule}. */
export interface RuleCompileOptions {
  config: RuleCompileConfig;
  origin: RuleOrigin;
  /** Where `env:NAME` signing secrets are read. Default the process's environment. */
  env?: EnvironmentLookup;
}

/**
 * Compiles a rule whose shape is already checked (`validateRuleDefinitionShape`), collecting
 * every pattern, transform and signing problem rather than stopping at the first. Problem
 * pointers are relative to the rule (`/pattern/data/total`, `/targets/0/transform`).
 */
export function checkRule(
  bus: string,
  definition: RuleDefinition,
  options: RuleCompileOptions,
): { rule: CompiledRule; problems: [] } | { rule?: undefined; problems: PointerProblem[] } {
  const { config } = options;
  const problems: PointerProblem[] = [];

  const pattern = compileBusPattern(definition.pattern, config, problems);
  const targetCount = definition.targets?.length ?? 0;
  if (targetCount > config.limits.maxTargetsPerRule) {
    problems.push({
      pointer: "/targets",
      message: `at most ${config.limits.maxTargetsPerRule} targets (limits.maxTargetsPerRule), got ${targetCount}`,
      code: "TooManyTargets",
    });
  }
  const targets = (definition.targets ?? []).map((target, index) =>
    resolveTarget(bus, definition.name, target, index, options, problems),
  );
  if (problems.length > 0 || pattern === undefined) return { problems };
  let matcher: CompiledPattern | undefined;

  const rule: CompiledRule = Object.freeze({
    bus,
    name: definition.name,
    definition,
    enabled: definition.enabled ?? true,
    origin: options.origin,
    pattern,
    matches: (event: CloudEvent) => (matcher ??= compileEventPattern(pattern)).matches(event),
    targets: Object.freeze(targets.filter((t): t is RoutedTarget => t !== undefined)),
  });
  return { rule, problems: [] };
}

/**
 * Validates and compiles an untrusted rule (an API body): shape, pattern and transforms.
 * Throws a `RelaybusError` whose code is that of the first problem (`InvalidRule`,
 * `InvalidEventPattern`, `InvalidTransform`, or a limit's: `EventPatternTooLarge`,
 * `TransformTooLarge`, `TooManyTargets`), whose message lists every problem as
 * `pointer: message`, and whose `details.problems` holds them.
 */
export function compileRule(bus: string, input: unknown, options: RuleCompileOptions): CompiledRule {
  const shapeProblems = validateRuleDefinitionShape(input);
  const result =
    shapeProblems.length > 0
      ? { problems: shapeProblems }
      : checkRule(bus, input as RuleDefinition, options);
  if (result.rule !== undefined) return result.rule;
  throw problemsToError(result.problems);
}

/** One error for a list of problems (at least one), coded by the first. */
export function problemsToError(problems: readonly PointerProblem[]): RelaybusError {
  const first = problems[0];
  const lines = problems.map((p) => `${p.pointer === "" ? "/" : p.pointer}: ${p.message}`);
  return new RelaybusError(first?.code ?? "InvalidRule", lines.join("; "), {
    details: { problems: problems.map(({ pointer, message }) => ({ pointer, message })) },
  });
}

/** The retry policy of a target: its own fields over the configured defaults. */
export function resolveRetryPolicy(
  retry: TargetDefinition["retry"],
  defaults: RelaybusConfig["delivery"]["retry"],
): RetryPolicy {
  return {
    maxAttempts: retry?.maxAttempts ?? defaults.maxAttempts,
    maxAgeSeconds: retry?.maxAgeSeconds ?? defaults.maxAgeSeconds,
    baseDelayMs: retry?.baseDelayMs ?? defaults.baseDelayMs,
    factor: retry?.factor ?? defaults.factor,
    maxDelayMs: retry?.maxDelayMs ?? defaults.maxDelayMs,
    ...(retry?.delaysMs === undefined ? {} : { delaysMs: Object.freeze([...retry.delaysMs]) }),
  };
}

/**
 * The pacing of a target: its own fields over the configured defaults. A pause longer than
 * the default `maxOpenSeconds` raises that maximum with it; both given the wrong way round
 * is a problem (pointer under `base`).
 */
export function resolvePacing(
  pacing: TargetDefinition["pacing"],
  defaults: RelaybusConfig["delivery"],
  base: (string | number)[],
  problems: PointerProblem[],
): TargetPacing | undefined {
  const breaker = pacing?.circuitBreaker;
  let circuitBreaker: TargetPacing["circuitBreaker"];
  if (breaker !== false) {
    const openSeconds = breaker?.openSeconds ?? defaults.circuitBreaker.openSeconds;
    const maxOpenSeconds =
      breaker?.maxOpenSeconds ?? Math.max(defaults.circuitBreaker.maxOpenSeconds, openSeconds);
    if (maxOpenSeconds < openSeconds) {
      problems.push({
        pointer: toPointer([...base, "pacing", "circuitBreaker", "maxOpenSeconds"]),
        message: `must be at least openSeconds (${openSeconds}), got ${maxOpenSeconds}`,
        code: "InvalidRule",
      });
      return undefined;
    }
    circuitBreaker = Object.freeze({
      failureThreshold: breaker?.failureThreshold ?? defaults.circuitBreaker.failureThreshold,
      openMs: openSeconds * 1000,
      maxOpenMs: maxOpenSeconds * 1000,
    });
  }
  return Object.freeze({
    ...(pacing?.ratePerSecond === undefined ? {} : { ratePerSecond: pacing.ratePerSecond }),
    // Absent: the engine applies its per-target default, itself within delivery.maxInFlight.
    ...(pacing?.maxInFlight === undefined ? {} : { maxInFlight: pacing.maxInFlight }),
    ...(circuitBreaker === undefined ? {} : { circuitBreaker }),
    disableAfterFailingSeconds:
      pacing?.disableAfterFailingSeconds ?? defaults.disableAfterFailingSeconds,
  });
}

/**
 * Checks a rule's pattern and puts it in bus vocabulary (`detail-type`/`detail` mean
 * `type`/`data`), pushing any problem (pointer under `/pattern`) instead of throwing.
 */
export function compileBusPattern(
  pattern: JsonObject,
  config: RuleCompileConfig,
  problems: PointerProblem[],
): EventPattern | undefined {
  const limits = patternLimitsOf(config.limits);
  const tooLarge = patternSizeError(pattern, limits.maxPatternBytes);
  if (tooLarge !== undefined) {
    problems.push({ pointer: "/pattern", message: tooLarge.message, code: tooLarge.code });
    return undefined;
  }
  // Parse as written first, so that a grammar error points into the file as the author
  // wrote it (`detail/total`, not the translated `data/total`).
  try {
    parseEventPattern(pattern, limits);
  } catch (error) {
    problems.push(patternProblem(error, pattern));
    return undefined;
  }
  const translated = toBusPattern(pattern);
  if (translated.pattern === undefined) {
    problems.push(...translated.problems.map((p) => ({ ...p, pointer: `/pattern${p.pointer}` })));
    return undefined;
  }
  try {
    return parseEventPattern(translated.pattern, limits);
  } catch (error) {
    // Not expected where the original parsed (only top-level names changed); if it happens,
    // its path names the translated keys, which the file does not hold, so report /pattern.
    problems.push({ ...patternProblem(error, translated.pattern), pointer: "/pattern" });
    return undefined;
  }
}

function resolveTarget(
  bus: string,
  rule: string,
  target: TargetDefinition,
  index: number,
  options: RuleCompileOptions,
  problems: PointerProblem[],
): RoutedTarget | undefined {
  const { config } = options;
  const base = ["targets", index];
  let ok = true;
  try {
    const url = new URL(target.webhook.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http");
  } catch {
    problems.push({
      pointer: toPointer([...base, "webhook", "url"]),
      message: `must be an http or https URL, got ${JSON.stringify(target.webhook.url)}`,
      code: "InvalidRule",
    });
    ok = false;
  }
  const format =
    target.format ?? (target.transform === undefined ? DEFAULT_TARGET_FORMAT : "transform");
  let transform: RoutedTarget["transform"];
  const transformTooLarge =
    target.transform === undefined ? undefined : transformSizeError(target.transform, config.limits.maxTransformBytes);
  if (transformTooLarge !== undefined) {
    problems.push({ pointer: toPointer([...base, "transform"]), message: transformTooLarge.message, code: transformTooLarge.code });
    ok = false;
  } else if (target.transform !== undefined) {
    try {
      transform = compileTransform(target.transform, {
        maxTransformBytes: config.limits.maxTransformBytes,
      });
    } catch (error) {
      problems.push({
        pointer: toPointer([...base, "transform"]),
        message: error instanceof Error ? error.message : String(error),
        code: "InvalidTransform",
      });
      ok = false;
    }
  }
  let signingSecrets: RoutedTarget["signingSecrets"];
  if (target.signing !== undefined) {
    if (options.origin.kind === "api") {
      // Secrets in an API rule's definition would be shown by every GET of it, and `env:`
      // would let API callers sign with the server's environment variables.
      problems.push({
        pointer: toPointer([...base, "signing"]),
        message: `signing is for rule files; create the secrets of an API rule's target with POST /v1/buses/${bus}/rules/${rule}/targets/${target.id}/secrets`,
        code: "InvalidRule",
      });
      ok = false;
    } else {
      const resolved = resolveSigningSecrets(
        target.signing.secrets,
        options.env ?? processEnvironment,
        [...base, "signing", "secrets"],
        problems,
      );
      if (resolved === undefined) ok = false;
      else signingSecrets = Object.freeze(resolved);
    }
  }
  const pacing = resolvePacing(target.pacing, config.delivery, base, problems);
  if (pacing === undefined) ok = false;
  if (!ok) return undefined;
  return Object.freeze({
    rule,
    targetId: target.id,
    url: target.webhook.url,
    headers: Object.freeze({ ...target.webhook.headers }),
    timeoutMs: target.webhook.timeoutMs ?? config.delivery.timeoutMs,
    format,
    ...(transform === undefined ? {} : { transform }),
    retry: Object.freeze(resolveRetryPolicy(target.retry, config.delivery.retry)),
    ...(signingSecrets === undefined ? {} : { signingSecrets }),
    pacing,
  });
}

/**
 * A pattern parse error as a problem under `/pattern`. The parser names the offending part
 * by a dotted path (`detail.total[0].numeric`, in `details.path` and as the message's
 * prefix); it is resolved against the pattern into a JSON pointer so that files can report
 * its line. A key may itself hold dots (`"detail.total"` is a valid flattened key), so the
 * path is matched against the keys that exist rather than split blindly.
 */
/** The pattern limits of the configuration (`limits.maxPattern*`). */
export function patternLimitsOf(limits: RuleCompileConfig["limits"]): Required<PatternLimits> {
  return {
    maxPatternBytes: limits.maxPatternBytes,
    maxDepth: limits.maxPatternDepth,
    maxFields: limits.maxPatternFields,
    maxAlternatives: limits.maxPatternAlternatives,
    maxWildcardScore: limits.maxPatternWildcardScore,
    maxRegexes: limits.maxPatternRegexes,
    maxValuesPerField: limits.maxPatternValuesPerField,
    maxWildcardStars: limits.maxPatternWildcardStars,
    maxRegexLength: limits.maxPatternRegexLength,
  };
}

function patternProblem(error: unknown, pattern: JsonValue): PointerProblem {
  if (!(error instanceof RelaybusError)) {
    const message = error instanceof Error ? error.message : String(error);
    return { pointer: "/pattern", message, code: "InvalidEventPattern" };
  }
  const path = error.details?.path;
  // A limit's own code stays; anything else the parser throws is a wrong pattern.
  const code =
    error.code === "EventPatternTooComplex" || error.code === "EventPatternTooLarge" ? error.code : "InvalidEventPattern";
  if (typeof path !== "string") return { pointer: "/pattern", message: error.message, code };
  const prefix = `${path === "" ? "pattern" : path}: `;
  const message = error.message.startsWith(prefix)
    ? error.message.slice(prefix.length)
    : error.message;
  return {
    pointer: `/pattern${toPointer(resolveDottedPath(pattern, path))}`,
    message,
    code,
  };
}

/**
 * `detail.total[0].numeric` against the pattern → `["detail", "total", 0, "numeric"]`,
 * preferring the longest existing key at each level. Stops at the first part that does
 * not resolve and keeps the rest as one segment, so the line found is still the nearest.
 */
export function resolveDottedPath(root: JsonValue, path: string): (string | number)[] {
  const segments: (string | number)[] = [];
  let node: JsonValue | undefined = root;
  let rest = path;
  while (rest !== "") {
    const index = /^\[(\d+)\]/.exec(rest);
    if (index !== null && Array.isArray(node)) {
      const i = Number(index[1]);
      segments.push(i);
      node = node[i];
      rest = rest.slice(index[0].length).replace(/^\./, "");
      continue;
    }
    if (typeof node !== "object" || node === null || Array.isArray(node)) break;
    const object: { [key: string]: JsonValue } = node;
    const key = Object.keys(object)
      .filter((k) => rest === k || rest.startsWith(`${k}.`) || rest.startsWith(`${k}[`))
      .sort((a, b) => b.length - a.length)[0];
    if (key === undefined) break;
    segments.push(key);
    node = object[key];
    rest = rest.slice(key.length).replace(/^\./, "");
  }
  if (rest !== "") segments.push(rest);
  return segments;
}
