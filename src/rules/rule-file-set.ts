/**
 * The rule files as one set (rules, files, the buses and connections they declare), the
 * checks a new set must pass against what the API holds before it replaces the running one,
 * and what a reload changed. Pure functions: the registry passes in what the API holds.
 */
import type { CompiledRule } from "./compile-rule.js";
import type { FileConnection, LoadedRuleFile } from "./load-rule-files.js";
import type { RuleProblem } from "./rule-problem.js";

/** Everything the rule files hold, as one loaded set. */
export interface FileSet {
  rules: readonly CompiledRule[];
  files: readonly LoadedRuleFile[];
  /** Bus → files declaring it, in load order. */
  busFiles: ReadonlyMap<string, readonly string[]>;
  /** Bus → its first description in the files. */
  busDescriptions: ReadonlyMap<string, string>;
  /** Buses a file marks `system: true`. */
  systemBuses: ReadonlySet<string>;
  /** Name → a connection the files declare. */
  connections: ReadonlyMap<string, FileConnection>;
}

/** The names of rules (or connections) a reload added, removed or changed. */
export interface NameChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

/** File rules that take the name of an API rule of their bus. */
export function fileRulesTakingApiNames(
  set: FileSet,
  isApiRule: (bus: string, name: string) => boolean,
): RuleProblem[] {
  const problems: RuleProblem[] = [];
  for (const rule of set.rules) {
    if (rule.origin.kind !== "file" || !isApiRule(rule.bus, rule.name)) continue;
    problems.push({
      file: rule.origin.file,
      line: rule.origin.line,
      pointer: `${rule.origin.pointer}/name`,
      message: `rule ${JSON.stringify(rule.name)} of bus ${JSON.stringify(rule.bus)} already exists as an API rule; rename this one, or delete the API rule first (DELETE /v1/buses/${rule.bus}/rules/${rule.name})`,
    });
  }
  return problems;
}

/**
 * File rules past `maxRulesPerBus` (`limits.maxRulesPerBus`) on their bus, counting the
 * bus's API rules first: one problem per bus, at its first file rule over the limit.
 */
export function fileRulesOverLimit(
  set: FileSet,
  maxRulesPerBus: number,
  apiRuleCount: (bus: string) => number,
): RuleProblem[] {
  const counts = new Map<string, number>();
  const problems: RuleProblem[] = [];
  for (const rule of set.rules) {
    const count = (counts.get(rule.bus) ?? apiRuleCount(rule.bus)) + 1;
    counts.set(rule.bus, count);
    if (count !== maxRulesPerBus + 1 || rule.origin.kind !== "file") continue;
    problems.push({
      file: rule.origin.file,
      line: rule.origin.line,
      pointer: rule.origin.pointer,
      message: `rule ${JSON.stringify(rule.name)} is past the limit of ${maxRulesPerBus} rules on bus ${JSON.stringify(rule.bus)} (limits.maxRulesPerBus, rule files and API rules together)`,
    });
  }
  return problems;
}

/** File connections that take the name of an API connection. */
export function fileConnectionsTakingApiNames(
  set: FileSet,
  isApiConnection: (name: string) => boolean,
): RuleProblem[] {
  const problems: RuleProblem[] = [];
  for (const { definition, origin } of set.connections.values()) {
    if (!isApiConnection(definition.name)) continue;
    problems.push({
      file: origin.file,
      line: origin.line,
      pointer: `${origin.pointer}/name`,
      message: `connection ${JSON.stringify(definition.name)} already exists as an API connection; rename this one, or delete the API connection first (DELETE /v1/connections/${definition.name})`,
    });
  }
  return problems;
}

/** The rules (per bus) and connections `next` adds, removes or changes against `previous`. */
export function fileChanges(
  previous: FileSet,
  next: FileSet,
): { changed: boolean; buses: Record<string, NameChanges>; connections: NameChanges } {
  const rulesOf = (set: FileSet) =>
    new Map(set.rules.map((rule) => [`${rule.bus}\u0000${rule.name}`, rule]));
  const before = rulesOf(previous);
  const after = rulesOf(next);
  const buses: Record<string, NameChanges> = {};
  const of = (bus: string) => (buses[bus] ??= { added: [], removed: [], changed: [] });
  for (const [id, rule] of after) {
    const old = before.get(id);
    if (old === undefined) of(rule.bus).added.push(rule.name);
    else if (JSON.stringify(old.definition) !== JSON.stringify(rule.definition))
      of(rule.bus).changed.push(rule.name);
  }
  for (const [id, rule] of before) if (!after.has(id)) of(rule.bus).removed.push(rule.name);
  const connections: NameChanges = { added: [], removed: [], changed: [] };
  for (const [name, connection] of next.connections) {
    const old = previous.connections.get(name);
    if (old === undefined) connections.added.push(name);
    else if (JSON.stringify(old.definition) !== JSON.stringify(connection.definition))
      connections.changed.push(name);
  }
  for (const name of previous.connections.keys())
    if (!next.connections.has(name)) connections.removed.push(name);
  const changed =
    Object.keys(buses).length > 0 ||
    connections.added.length + connections.removed.length + connections.changed.length > 0;
  return { changed, buses, connections };
}
