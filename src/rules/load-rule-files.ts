/**
 * Loads the rule files of a directory: every `*.yaml` / `*.yml` under it, in path order,
 * parsed with positions so that every problem (YAML syntax, schema, pattern, transform,
 * duplicate rule names in a bus across files) is reported as `file:line: pointer: message`.
 * Loading never stops at the first problem: an operator fixing files wants all of them.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { DEFAULT_CONFIG } from "../config/defaults.js";
import { checkRule, compileBusPattern, type CompiledRule, type RuleCompileConfig } from "./compile-rule.js";
import type { ConnectionDefinition, RuleDefinition, RuleOrigin } from "./model.js";
import type { JsonObject } from "../types.js";
import { formatRuleProblem, type PointerProblem, type RuleProblem } from "./rule-problem.js";
import { validateRuleFileShape } from "./validate-rule.js";
import { lineOfPointer, pointerAtOffset } from "./yaml-positions.js";

export { formatRuleProblem, type RuleProblem };

/** The file extensions read as rule files. */
export const RULE_FILE_EXTENSIONS = [".yaml", ".yml"] as const;

/** One rule file, loaded. */
export interface LoadedRuleFile {
  /** The path as the directory was given joined with the file's path under it. */
  file: string;
  /** The bus the file declares (absent when the file is too broken to say). */
  bus?: string;
  description?: string;
  /** True when the file marks its bus `system: true`. */
  system?: boolean;
  /** Rules found in the file, compiled or not. */
  ruleCount: number;
}

/** A connection declared in a rule file, with where (`/connections/0` of which file, which line). */
export interface FileConnection {
  definition: ConnectionDefinition;
  origin: Extract<RuleOrigin, { kind: "file" }>;
}

/**
 * A top-level section of a rule file that another layer owns (`streams:`, `schedules:`): the
 * rules layer finds it and says where it is; its owner checks and applies it.
 */
export interface FileSection {
  /** The section's key. */
  key: string;
  file: string;
  /** The section's value, as JSON. */
  value: unknown;
  /** The line of a JSON pointer inside the section (`/0/source` is the first entry's source). */
  lineOf(pointer: string): number;
}

/**
 * The layer that owns one section key. Every load of the rule files hands it that key's
 * sections of all files; its problems refuse the load as the rules' own do, and `apply`
 * runs only when the whole load was accepted (so a reload stays all or nothing).
 */
export interface FileSectionOwner {
  key: (typeof OWNED_SECTION_KEYS)[number];
  check(sections: readonly FileSection[]): { problems: RuleProblem[]; apply(): void };
}

/** The sections of rule files that other layers own; the rules layer only checks they are lists. */
export const OWNED_SECTION_KEYS = ["streams", "schedules"] as const;

/** Every rule file of a directory: the compiled rules when there is no problem at all. */
export interface RuleFileSet {
  files: LoadedRuleFile[];
  /** Compiled rules of all files, in file then definition order (only those that compiled). */
  rules: CompiledRule[];
  /** Connections of all files whose shape is right, in file then definition order. */
  connections: FileConnection[];
  /** The owned sections of all files, in file order. */
  sections: FileSection[];
  problems: RuleProblem[];
}

/** Options of {@link loadRuleFiles}. */
export interface LoadRuleFilesOptions {
  /**
   * Whether a connection not declared in any file exists elsewhere (created through the
   * API). Given, a target naming a connection neither declares nor this knows is a problem
   * of its file. Absent (`relaybus rules check`, which cannot see the API's), only names the
   * files declare are known, and other names are not reported.
   */
  connectionExists?: (name: string) => boolean;
}

/** A target's `connection`, where it is written. */
interface ConnectionReference {
  name: string;
  file: string;
  line: number;
  pointer: string;
}

/**
 * Loads and compiles every rule file under `dir` (recursively, skipping names that start
 * with `.` such as editor swap files). A missing directory is an empty set. Never throws for
 * a problem in a file; problems are returned, sorted by file and line.
 */
export async function loadRuleFiles(
  dir: string,
  config: RuleCompileConfig = DEFAULT_CONFIG,
  options: LoadRuleFilesOptions = {},
): Promise<RuleFileSet> {
  const set: RuleFileSet = { files: [], rules: [], connections: [], sections: [], problems: [] };
  let paths: string[];
  try {
    paths = await listRuleFiles(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return set;
    set.problems.push({
      file: dir,
      line: 1,
      pointer: "",
      message: `cannot read the rules directory: ${(error as Error).message}`,
    });
    return set;
  }

  // Where each bus+name was first defined, to report a second definition in any file.
  const defined = new Map<string, { file: string; line: number }>();
  const references: ConnectionReference[] = [];
  /** Where each connection name was first declared. */
  const declaredAt = new Map<string, { file: string; line: number }>();
  for (const path of paths) {
    const file = join(dir, path);
    const problems: RuleProblem[] = [];
    const loaded = await loadOneFile(file, config, { defined, declaredAt }, set, references, problems);
    set.files.push(loaded);
    set.problems.push(...problems);
  }
  // Connections are global, so references are checked once every file declared its own.
  const declared = new Set(set.connections.map((c) => c.definition.name));
  for (const reference of references) {
    if (declared.has(reference.name) || options.connectionExists === undefined) continue;
    if (options.connectionExists(reference.name)) continue;
    set.problems.push({
      file: reference.file,
      line: reference.line,
      pointer: reference.pointer,
      message: `connection ${JSON.stringify(reference.name)} does not exist; declare it under connections: in a rule file, or create it with PUT /v1/connections/${reference.name}`,
    });
  }
  // Sorted by file (in load order) then line.
  const fileOrder = new Map(set.files.map((f, index) => [f.file, index]));
  set.problems.sort((a, b) => (fileOrder.get(a.file) ?? -1) - (fileOrder.get(b.file) ?? -1) || a.line - b.line);
  return set;
}

/**
 * What `relaybus rules check` prints: how many files and rules were found under `dir`, and
 * every problem, the `owners`' sections' included. A missing directory is zero files, not an error.
 */
export async function checkRuleFiles(
  dir: string,
  config: RuleCompileConfig = DEFAULT_CONFIG,
  owners: readonly FileSectionOwner[] = [],
): Promise<{ files: number; rules: number; problems: RuleProblem[] }> {
  const set = await loadRuleFiles(dir, config);
  const owned = checkOwnedSections(set, owners);
  const problems = [...set.problems, ...owned.problems];
  // The owners given here exist for the check: applying tells them what a load would run.
  if (problems.length === 0) owned.apply();
  return {
    files: set.files.length,
    rules: set.files.reduce((sum, f) => sum + f.ruleCount, 0),
    problems,
  };
}

/**
 * Hands each owner its sections of a loaded set: their problems, and one `apply` that
 * applies every owner's sections (to call once the whole load was accepted).
 */
export function checkOwnedSections(
  set: Pick<RuleFileSet, "sections">,
  owners: readonly FileSectionOwner[],
): { problems: RuleProblem[]; apply(): void } {
  const checked = owners.map((owner) => owner.check(set.sections.filter((s) => s.key === owner.key)));
  return {
    problems: checked.flatMap((c) => c.problems),
    apply: () => {
      for (const c of checked) c.apply();
    },
  };
}

async function listRuleFiles(dir: string, prefix = ""): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const found: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const relative = prefix === "" ? entry.name : join(prefix, entry.name);
    if (entry.isDirectory()) found.push(...(await listRuleFiles(dir, relative)));
    else if (entry.isFile() && RULE_FILE_EXTENSIONS.some((ext) => entry.name.endsWith(ext)))
      found.push(relative);
  }
  // Plain code-point order, not the locale's, so every machine loads files alike.
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function loadOneFile(
  file: string,
  config: RuleCompileConfig,
  seen: {
    /** Where each bus + rule name was first defined. */
    defined: Map<string, { file: string; line: number }>;
    /** Where each connection name was first declared. */
    declaredAt: Map<string, { file: string; line: number }>;
  },
  set: Pick<RuleFileSet, "rules" | "connections" | "sections">,
  references: ConnectionReference[],
  problems: RuleProblem[],
): Promise<LoadedRuleFile> {
  const compiled = set.rules;
  const { defined } = seen;
  const loaded: LoadedRuleFile = { file, ruleCount: 0 };
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    problems.push({
      file,
      line: 1,
      pointer: "",
      message: `cannot read: ${(error as Error).message}`,
    });
    return loaded;
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const offset = error.pos[0];
      problems.push({
        file,
        line: lineCounter.linePos(offset).line,
        pointer: pointerAtOffset(doc, offset),
        message: `YAML: ${error.message}`,
      });
    }
    return loaded;
  }
  const at = (problem: PointerProblem): RuleProblem => ({
    file,
    line: lineOfPointer(doc, lineCounter, problem.pointer),
    pointer: problem.pointer,
    message: problem.message,
  });

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    problems.push({ file, line: 1, pointer: "", message: `YAML: ${(error as Error).message}` });
    return loaded;
  }
  if (value === null || value === undefined) {
    problems.push({
      file,
      line: 1,
      pointer: "",
      message: 'the file is empty; expected a mapping with "bus" and "rules" (or "connections", "streams", "schedules")',
    });
    return loaded;
  }

  const shapeProblems = validateRuleFileShape(value);
  problems.push(...shapeProblems.map(at));
  const { bus, description, system, rules } = value as {
    bus?: unknown;
    description?: unknown;
    system?: unknown;
    rules?: unknown;
  };
  if (typeof bus === "string" && !shapeProblems.some((p) => p.pointer === "/bus")) loaded.bus = bus;
  if (typeof description === "string") loaded.description = description;
  if (system === true) loaded.system = true;
  for (const key of OWNED_SECTION_KEYS) {
    const section = (value as Record<string, unknown>)[key];
    if (!Array.isArray(section) || shapeProblems.some((p) => p.pointer === `/${key}`)) continue;
    set.sections.push({ key, file, value: section, lineOf: (pointer) => lineOfPointer(doc, lineCounter, `/${key}${pointer}`) });
  }
  collectConnections(value, file, shapeProblems, (pointer) => lineOfPointer(doc, lineCounter, pointer), seen.declaredAt, set.connections, problems);
  if (!Array.isArray(rules)) return loaded;
  loaded.ruleCount = rules.length;

  rules.forEach((rule: unknown, index) => {
    const base = `/rules/${index}`;
    const line = lineOfPointer(doc, lineCounter, base);
    const name = (rule as { name?: unknown } | null)?.name;
    if (loaded.bus !== undefined && typeof name === "string") {
      const key = `${loaded.bus}\u0000${name}`;
      const first = defined.get(key);
      if (first === undefined) {
        defined.set(key, { file, line });
      } else {
        problems.push(
          at({
            pointer: `${base}/name`,
            message: `rule ${JSON.stringify(name)} of bus ${JSON.stringify(loaded.bus)} is already defined at ${first.file}:${first.line}; rule names are unique within a bus`,
            code: "InvalidRule",
          }),
        );
      }
    }
    // A rule with a shape problem is not compiled: its pattern or transforms may be
    // missing or of the wrong type, and the shape problem already says what to fix. Its
    // pattern is still checked when the shape problems lie elsewhere, so one run of
    // `relaybus rules check` reports every problem of the rule.
    const ruleShapeProblems = shapeProblems.filter((p) => p.pointer === base || p.pointer.startsWith(`${base}/`));
    if (loaded.bus === undefined || ruleShapeProblems.length > 0) {
      const pattern = (rule as { pattern?: unknown } | null)?.pattern;
      const patternUntouched = !ruleShapeProblems.some((p) => p.pointer === base || p.pointer.startsWith(`${base}/pattern`));
      if (patternUntouched && typeof pattern === "object" && pattern !== null && !Array.isArray(pattern)) {
        const patternProblems: PointerProblem[] = [];
        compileBusPattern(pattern as JsonObject, config, patternProblems);
        problems.push(...patternProblems.map((p) => at({ ...p, pointer: `${base}${p.pointer}` })));
      }
      return;
    }
    (rule as RuleDefinition).targets?.forEach((target, index) => {
      if (target.connection === undefined) return;
      const pointer = `${base}/targets/${index}/connection`;
      references.push({ name: target.connection, file, line: lineOfPointer(doc, lineCounter, pointer), pointer });
    });
    const result = checkRule(loaded.bus, rule as RuleDefinition, {
      config,
      origin: { kind: "file", file, line, pointer: base },
    });
    if (result.rule !== undefined) compiled.push(result.rule);
    else problems.push(...result.problems.map((p) => at({ ...p, pointer: `${base}${p.pointer}` })));
  });
  return loaded;
}

/**
 * The file's connections whose shape is right, added to `connections`; a name declared
 * before (in this file or an earlier one) is a problem.
 */
function collectConnections(
  value: unknown,
  file: string,
  shapeProblems: readonly PointerProblem[],
  lineOf: (pointer: string) => number,
  declaredAt: Map<string, { file: string; line: number }>,
  connections: FileConnection[],
  problems: RuleProblem[],
): void {
  const declared = (value as { connections?: unknown }).connections;
  if (!Array.isArray(declared)) return;
  declared.forEach((connection: unknown, index) => {
    const pointer = `/connections/${index}`;
    if (shapeProblems.some((p) => p.pointer === pointer || p.pointer.startsWith(`${pointer}/`))) return;
    const definition = connection as ConnectionDefinition;
    const line = lineOf(pointer);
    const first = declaredAt.get(definition.name);
    if (first !== undefined) {
      problems.push({
        file,
        line: lineOf(`${pointer}/name`),
        pointer: `${pointer}/name`,
        message: `connection ${JSON.stringify(definition.name)} is already declared at ${first.file}:${first.line}; connection names are unique across rule files`,
      });
      return;
    }
    declaredAt.set(definition.name, { file, line });
    connections.push({ definition, origin: { kind: "file", file, line, pointer } });
  });
}
