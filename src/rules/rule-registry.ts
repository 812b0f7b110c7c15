/**
 * The rule registry: every rule of every bus, from rule files and from the API, compiled,
 * and the router the dispatcher calls once per event.
 *
 * Routing asks one immutable table per bus (its enabled rules and the pattern machine built
 * from them, see `bus-routing.ts`), so it never sees a half-applied change and a bus without
 * rules costs one Map lookup. Every change builds new tables aside and swaps them in. A reload of the
 * files with any problem is refused whole, and the running rules stay.
 */
import type { RelaybusConfig } from "../config/defaults.js";
import type { RoutedTarget } from "../delivery/router.js";
import { RelaybusError } from "../errors.js";
import type { ConnectionDefinition, ConnectionStore } from "../log/connection-store.js";
import type { CatalogStore, StoredRule } from "../log/log-engine.js";
import type { CloudEvent, JsonObject, Logger } from "../types.js";
import { BusRouting } from "./bus-routing.js";
import { checkRule, compileRule, problemsToError, type CompiledRule } from "./compile-rule.js";
import { checkOwnedSections, loadRuleFiles, type FileSectionOwner } from "./load-rule-files.js";
import { formatRuleProblem, type RuleProblem } from "./rule-problem.js";
import {
  fileChanges,
  fileConnectionsTakingApiNames,
  fileRulesOverLimit,
  fileRulesTakingApiNames,
  type FileSet,
} from "./rule-file-set.js";
import type {
  BusOrigin,
  BusView,
  ConnectionUser,
  ReloadSummary,
  RuleFilesReload,
  RuleRegistry,
  RuleView,
} from "./rule-registry-contract.js";
import { watchRuleFiles } from "./watch-rule-files.js";

export type { NameChanges } from "./rule-file-set.js";
export type {
  BusOrigin,
  BusView,
  ConnectionUser,
  ReloadSummary,
  RuleFilesReload,
  RuleRegistry,
  RuleView,
} from "./rule-registry-contract.js";

/** The bus that always exists. */
export const DEFAULT_BUS = "default";

/** What the registry needs. */
export interface RuleRegistryDeps {
  catalog: CatalogStore;
  /**
   * Connections created through the API: targets may name them, and file connections may
   * not take their names. Absent, only the rule files' connections exist.
   */
  connections?: ConnectionStore;
  /** Directory of rule files; a missing directory holds no rules. */
  rulesDir: string;
  config: RelaybusConfig;
  logger: Logger;
  /** Quiet time after the last file change before `watch()` reloads. Default 200 ms. */
  watchDebounceMs?: number;
  /** Time source for API rule timestamps. Default `Date.now`. */
  nowMs?: () => number;
  /** Buses with more rules than this rebuild their pattern machine aside. Default 2,000. */
  syncBuildMaxRules?: number;
  /**
   * Told after every reload of the rule files but the first (at creation), by the API,
   * SIGHUP or the watcher: what changed, or the problems that refused it. For the audit log;
   * it must not throw (a throw is logged, the reload stands).
   */
  onFilesReloaded?: (reload: RuleFilesReload) => void;
  /**
   * The layers owning the files' other sections (`streams:`, `schedules:`): their problems
   * refuse a load like a rule's, and they apply their sections only with an accepted load.
   */
  sectionOwners?: readonly FileSectionOwner[];
}

interface ApiRule {
  rule: CompiledRule;
  stored: StoredRule;
}

/**
 * Creates the registry: loads the API rules from the catalog, then the rule files. Rejects
 * with `RulesReloadFailed` when a rule file has a problem: starting without rules the
 * operator wrote would dispatch events past them, and they would never be delivered.
 */
export async function createRuleRegistry(deps: RuleRegistryDeps): Promise<RuleRegistry> {
  const { catalog, rulesDir, config, logger } = deps;
  const nowMs = deps.nowMs ?? Date.now;
  const compileOptions = { config, origin: { kind: "api" } as const };

  let fileSet: FileSet = {
    rules: [],
    files: [],
    busFiles: new Map(),
    busDescriptions: new Map(),
    systemBuses: new Set(),
    connections: new Map(),
  };
  let fileRuleIndex = new Map<string, CompiledRule>();
  /** bus → name → API rule. Replaced, never mutated in place, like the snapshots. */
  let apiRules = new Map<string, ReadonlyMap<string, ApiRule>>();
  /** Per bus, the enabled rules and their pattern machine: what `route` asks. */
  const routing = new BusRouting({
    logger,
    ...(deps.syncBuildMaxRules === undefined ? {} : { syncBuildMaxRules: deps.syncBuildMaxRules }),
  });
  /**
   * Buses of the catalog, loaded with the API rules and kept by createBus and deleteBus, so
   * that busExists (asked once per ingested entry) never reaches SQLite.
   */
  const catalogBuses = new Set<string>();
  /** The catalog buses created `system`, kept like `catalogBuses`: billing asks per bus. */
  const catalogSystemBuses = new Set<string>();
  let reloading: Promise<unknown> = Promise.resolve();
  /** False until the files loaded at creation: that load is no change to report. */
  let loadedOnce = false;
  const stopFunctions = new Set<() => void>();

  const key = (bus: string, name: string) => `${bus}\u0000${name}`;

  function rebuildRoutes(): void {
    const next = new Map<string, CompiledRule[]>();
    const add = (rule: CompiledRule) => {
      if (!rule.enabled || rule.targets.length === 0) return;
      const list = next.get(rule.bus);
      if (list === undefined) next.set(rule.bus, [rule]);
      else list.push(rule);
    };
    fileSet.rules.forEach(add);
    for (const rules of apiRules.values()) sortedApiRules(rules).forEach((r) => add(r.rule));
    for (const list of next.values()) Object.freeze(list);
    routing.update(next);
  }

  function loadApiRules(): void {
    const next = new Map<string, Map<string, ApiRule>>();
    for (const stored of catalog.listRules()) {
      try {
        const rule = compileRule(stored.bus, stored.definition, compileOptions);
        const rules = next.get(stored.bus) ?? new Map<string, ApiRule>();
        rules.set(stored.name, { rule, stored });
        next.set(stored.bus, rules);
      } catch (error) {
        // Stored rules were valid when written; a tighter limit since may reject one. Skip it
        // rather than refuse to start; it stays in the catalog, where DELETE still finds it.
        logger.error("an API rule no longer compiles and is not routed", {
          bus: stored.bus,
          rule: stored.name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    apiRules = next;
    catalogBuses.clear();
    catalogSystemBuses.clear();
    for (const bus of catalog.listBuses()) {
      catalogBuses.add(bus.name);
      if (bus.system === true) catalogSystemBuses.add(bus.name);
    }
  }

  function setApiRule(bus: string, name: string, value: ApiRule | undefined): void {
    const rules = new Map(apiRules.get(bus) ?? []);
    if (value === undefined) rules.delete(name);
    else rules.set(name, value);
    const next = new Map(apiRules);
    if (rules.size === 0) next.delete(bus);
    else next.set(bus, rules);
    apiRules = next;
    rebuildRoutes();
  }

  function busExists(name: string): boolean {
    return (
      name === DEFAULT_BUS ||
      fileSet.busFiles.has(name) ||
      apiRules.has(name) ||
      catalogBuses.has(name)
    );
  }

  function requireBus(name: string): void {
    if (!busExists(name))
      throw new RelaybusError("BusNotFound", `bus ${JSON.stringify(name)} does not exist`);
  }

  function notFound(bus: string, name: string): RelaybusError {
    return new RelaybusError(
      "RuleNotFound",
      `rule ${JSON.stringify(name)} does not exist on bus ${JSON.stringify(bus)}`,
    );
  }

  function managedByFile(rule: CompiledRule): RelaybusError {
    const where =
      rule.origin.kind === "file" ? `${rule.origin.file}:${rule.origin.line}` : "a rule file";
    return new RelaybusError(
      "RuleManagedByFile",
      `rule ${JSON.stringify(rule.name)} of bus ${JSON.stringify(rule.bus)} is defined in ${where}; change the file instead`,
      { details: { origin: rule.origin } },
    );
  }

  /** Rules on `bus`: its file rules and its API rules. */
  function ruleCount(bus: string): number {
    let count = apiRules.get(bus)?.size ?? 0;
    for (const rule of fileSet.rules) if (rule.bus === bus) count++;
    return count;
  }

  /** Problems of an API rule whose targets name connections that do not exist. */
  function unknownConnections(rule: CompiledRule): RelaybusError | undefined {
    const problems = (rule.definition.targets ?? []).flatMap((target, index) =>
      target.connection === undefined || registry.findConnection(target.connection) !== undefined
        ? []
        : [
            {
              pointer: `/targets/${index}/connection`,
              message: `connection ${JSON.stringify(target.connection)} does not exist; create it with PUT /v1/connections/${target.connection} or declare it in a rule file`,
              code: "InvalidRule" as const,
            },
          ],
    );
    return problems.length === 0 ? undefined : problemsToError(problems);
  }

  async function loadFiles(): Promise<ReloadSummary> {
    const loaded = await loadRuleFiles(rulesDir, config, {
      connectionExists: (name) => deps.connections?.get(name) !== undefined,
    });
    const busFiles = new Map<string, string[]>();
    const busDescriptions = new Map<string, string>();
    const systemBuses = new Set<string>();
    for (const file of loaded.files) {
      if (file.bus === undefined) continue;
      if (file.system === true) systemBuses.add(file.bus);
      busFiles.set(file.bus, [...(busFiles.get(file.bus) ?? []), file.file]);
      if (file.description !== undefined && !busDescriptions.has(file.bus))
        busDescriptions.set(file.bus, file.description);
    }
    const next: FileSet = {
      rules: loaded.rules,
      files: loaded.files,
      busFiles,
      busDescriptions,
      systemBuses,
      connections: new Map(loaded.connections.map((c) => [c.definition.name, c])),
    };
    // From here to the swap nothing awaits, so API changes cannot slip in between the
    // conflict check and the swap.
    const owned = checkOwnedSections(loaded, deps.sectionOwners ?? []);
    const problems = [
      ...loaded.problems,
      ...owned.problems,
      ...fileRulesTakingApiNames(next, (bus, name) => apiRules.get(bus)?.has(name) === true),
      ...fileConnectionsTakingApiNames(next, (name) => deps.connections?.get(name) !== undefined),
      ...fileRulesOverLimit(
        next,
        config.limits.maxRulesPerBus,
        (bus) => apiRules.get(bus)?.size ?? 0,
      ),
    ];
    if (problems.length > 0) {
      if (loadedOnce) tellReloaded({ outcome: "refused", problems });
      throw new RelaybusError(
        "RulesReloadFailed",
        `rule files have ${problems.length} problem(s); ${loadedOnce ? "the running rules stay" : "no rules were loaded"}:\n  ${problems.map(formatRuleProblem).join("\n  ")}`,
        { details: { problems } },
      );
    }
    const previous = fileSet;
    fileSet = next;
    fileRuleIndex = new Map(next.rules.map((rule) => [key(rule.bus, rule.name), rule]));
    rebuildRoutes();
    owned.apply();
    const summary = { files: next.files.length, rules: next.rules.length, buses: busFiles.size };
    if (loadedOnce) tellReloaded({ outcome: "succeeded", summary, ...fileChanges(previous, next) });
    loadedOnce = true;
    return summary;
  }

  function tellReloaded(reload: RuleFilesReload): void {
    try {
      deps.onFilesReloaded?.(reload);
    } catch (error) {
      logger.error("the rule files' reload hook failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  function reloadFiles(): Promise<ReloadSummary> {
    // One reload at a time, in call order: a later reload must not be overtaken by an
    // earlier one that read the files before they changed.
    const run = reloading.then(loadFiles, loadFiles);
    reloading = run.catch(() => undefined);
    return run;
  }

  function view(rule: CompiledRule, stored?: StoredRule): RuleView {
    return {
      bus: rule.bus,
      name: rule.name,
      enabled: rule.enabled,
      origin: rule.origin,
      definition: rule.definition,
      ...(stored === undefined
        ? {}
        : { createdAtMs: stored.createdAtMs, updatedAtMs: stored.updatedAtMs }),
    };
  }

  function storeApiRule(bus: string, rule: CompiledRule, previous: ApiRule | undefined): RuleView {
    const now = nowMs();
    const stored: StoredRule = {
      bus,
      name: rule.name,
      definition: rule.definition as unknown as JsonObject,
      createdAtMs: previous?.stored.createdAtMs ?? now,
      updatedAtMs: now,
    };
    // The catalog first: if it cannot store the rule, nothing in memory changed.
    catalog.putRule(stored);
    setApiRule(bus, rule.name, { rule, stored });
    return view(rule, stored);
  }

  function findRule(bus: string, name: string): { file?: CompiledRule; api?: ApiRule } {
    const file = fileRuleIndex.get(key(bus, name));
    if (file !== undefined) return { file };
    const api = apiRules.get(bus)?.get(name);
    return api === undefined ? {} : { api };
  }

  loadApiRules();
  await reloadFiles();
  logger.info("rules loaded", {
    files: fileSet.files.length,
    fileRules: fileSet.rules.length,
    apiRules: [...apiRules.values()].reduce((sum, rules) => sum + rules.size, 0),
  });

  const registry: RuleRegistry = {
    route(bus: string, event: CloudEvent): RoutedTarget[] {
      return routing.route(bus, event);
    },

    routingSettled: () => routing.settled(),

    busExists,
    assertBusExists: requireBus,
    isSystemBus: (name) => catalogSystemBuses.has(name) || fileSet.systemBuses.has(name),

    createBus(bus): BusView {
      if (busExists(bus.name)) {
        throw new RelaybusError(
          "BusAlreadyExists",
          `bus ${JSON.stringify(bus.name)} already exists`,
        );
      }
      catalog.createBus({
        name: bus.name,
        createdAtMs: nowMs(),
        ...(bus.description === undefined ? {} : { description: bus.description }),
        ...(bus.system === true ? { system: true } : {}),
      });
      catalogBuses.add(bus.name);
      if (bus.system === true) catalogSystemBuses.add(bus.name);
      return registry.listBuses().find((b) => b.name === bus.name) as BusView;
    },

    listBuses(): BusView[] {
      const names = new Set<string>([DEFAULT_BUS, ...fileSet.busFiles.keys(), ...apiRules.keys()]);
      const catalogBuses = new Map(catalog.listBuses().map((bus) => [bus.name, bus]));
      for (const name of catalogBuses.keys()) names.add(name);
      const fileCounts = new Map<string, number>();
      for (const rule of fileSet.rules)
        fileCounts.set(rule.bus, (fileCounts.get(rule.bus) ?? 0) + 1);
      return [...names].sort().map((name) => {
        const stored = catalogBuses.get(name);
        const origins: BusOrigin[] = [];
        if (name === DEFAULT_BUS) origins.push("default");
        if (fileSet.busFiles.has(name)) origins.push("file");
        if (stored !== undefined) origins.push("catalog");
        if (apiRules.has(name)) origins.push("api-rules");
        const fileRules = fileCounts.get(name) ?? 0;
        const apiCount = apiRules.get(name)?.size ?? 0;
        const description = stored?.description ?? fileSet.busDescriptions.get(name);
        return {
          name,
          ...(description === undefined ? {} : { description }),
          origins,
          files: [...(fileSet.busFiles.get(name) ?? [])],
          rules: fileRules + apiCount,
          fileRules,
          apiRules: apiCount,
          ...(stored === undefined ? {} : { createdAtMs: stored.createdAtMs }),
          ...(stored?.system === true || fileSet.systemBuses.has(name)
            ? { system: true as const }
            : {}),
        };
      });
    },

    deleteBus(name: string, options: { force?: boolean } = {}): void {
      requireBus(name);
      if (name === DEFAULT_BUS)
        throw new RelaybusError("BusProtected", `bus "${DEFAULT_BUS}" cannot be deleted`);
      const files = fileSet.busFiles.get(name);
      if (files !== undefined) {
        throw new RelaybusError(
          "BusProtected",
          `bus ${JSON.stringify(name)} is declared by ${files.join(", ")}; remove it from the files instead`,
        );
      }
      const count = apiRules.get(name)?.size ?? 0;
      if (count > 0 && options.force !== true) {
        throw new RelaybusError(
          "BusHasRules",
          `bus ${JSON.stringify(name)} has ${count} rule(s); delete them first or pass force=true`,
        );
      }
      catalog.deleteBus(name);
      // Rules stored for a bus the catalog never held are deleted one by one.
      for (const rule of apiRules.get(name)?.keys() ?? []) catalog.deleteRule(name, rule);
      catalogBuses.delete(name);
      catalogSystemBuses.delete(name);
      const next = new Map(apiRules);
      next.delete(name);
      apiRules = next;
      rebuildRoutes();
    },

    reloadFiles,

    reloadCatalog(): void {
      loadApiRules();
      rebuildRoutes();
    },

    putRule(bus: string, definition: unknown, options: { mode: "create" | "replace" }): RuleView {
      requireBus(bus);
      const rule = compileRule(bus, definition, compileOptions);
      const { file, api } = findRule(bus, rule.name);
      if (file !== undefined) throw managedByFile(file);
      if (options.mode === "create" && api !== undefined) {
        throw new RelaybusError(
          "RuleAlreadyExists",
          `rule ${JSON.stringify(rule.name)} already exists on bus ${JSON.stringify(bus)}; replace it with PUT`,
        );
      }
      if (options.mode === "replace" && api === undefined) throw notFound(bus, rule.name);
      if (options.mode === "create") {
        const count = ruleCount(bus);
        const max = config.limits.maxRulesPerBus;
        if (count >= max) {
          throw new RelaybusError(
            "TooManyRules",
            `bus ${JSON.stringify(bus)} has ${count} rules, the limit of ${max} (limits.maxRulesPerBus, rule files and API rules together); delete one first`,
            { details: { bus, count, maxRulesPerBus: max } },
          );
        }
      }
      const unknown = unknownConnections(rule);
      if (unknown !== undefined) throw unknown;
      return storeApiRule(bus, rule, api);
    },

    setEnabled(bus: string, name: string, enabled: boolean): RuleView {
      requireBus(bus);
      const { file, api } = findRule(bus, name);
      if (file !== undefined) throw managedByFile(file);
      if (api === undefined) throw notFound(bus, name);
      if (api.rule.enabled === enabled) return view(api.rule, api.stored);
      const result = checkRule(bus, { ...api.rule.definition, enabled }, compileOptions);
      // The definition compiled a moment ago; only `enabled` changed.
      if (result.rule === undefined)
        throw new RelaybusError("InternalError", "a stored rule stopped compiling");
      return storeApiRule(bus, result.rule, api);
    },

    deleteRule(bus: string, name: string): void {
      requireBus(bus);
      const { file, api } = findRule(bus, name);
      if (file !== undefined) throw managedByFile(file);
      // A stored rule that no longer compiles is not in memory but can still be deleted.
      const deleted = catalog.deleteRule(bus, name);
      if (api === undefined && !deleted) throw notFound(bus, name);
      setApiRule(bus, name, undefined);
    },

    getRule(bus: string, name: string): RuleView {
      requireBus(bus);
      const { file, api } = findRule(bus, name);
      if (file !== undefined) return view(file);
      if (api !== undefined) return view(api.rule, api.stored);
      throw notFound(bus, name);
    },

    listRules(bus: string): RuleView[] {
      requireBus(bus);
      const fileRules = fileSet.rules.filter((rule) => rule.bus === bus).map((rule) => view(rule));
      const api = sortedApiRules(apiRules.get(bus) ?? new Map()).map((r) => view(r.rule, r.stored));
      return [...fileRules, ...api];
    },

    findTarget(bus: string, rule: string, targetId: string): RoutedTarget | undefined {
      const compiled = fileRuleIndex.get(key(bus, rule)) ?? apiRules.get(bus)?.get(rule)?.rule;
      return compiled?.targets.find((target) => target.targetId === targetId);
    },

    compiledRule(bus: string, name: string): CompiledRule | undefined {
      const { file, api } = findRule(bus, name);
      return file ?? api?.rule;
    },

    watch(): () => void {
      const stop = watchRuleFiles(rulesDir, {
        debounceMs: deps.watchDebounceMs ?? 200,
        logger,
        onChange: () =>
          reloadFiles().then(
            (summary) => logger.info("rule files changed: reloaded", { ...summary }),
            (error: unknown) => {
              const problems = (error as RelaybusError).details?.problems as
                RuleProblem[] | undefined;
              logger.warn("rule files changed but the reload was refused; the running rules stay", {
                error: error instanceof Error ? error.message.split("\n")[0] : String(error),
                ...(problems === undefined ? {} : { problems: problems.map(formatRuleProblem) }),
              });
            },
          ),
      });
      const stopOnce = () => {
        stopFunctions.delete(stopOnce);
        stop();
      };
      stopFunctions.add(stopOnce);
      return stopOnce;
    },

    async close(): Promise<void> {
      for (const stop of [...stopFunctions]) stop();
      routing.stop();
      await reloading;
    },

    connectionOf(bus: string, rule: string, targetId: string): string | undefined {
      const compiled = fileRuleIndex.get(key(bus, rule)) ?? apiRules.get(bus)?.get(rule)?.rule;
      return compiled?.definition.targets?.find((target) => target.id === targetId)?.connection;
    },

    findConnection(name: string): ConnectionDefinition | undefined {
      return fileSet.connections.get(name)?.definition ?? deps.connections?.get(name)?.definition;
    },

    fileConnections: () => [...fileSet.connections.values()],

    connectionUsers(name: string): ConnectionUser[] {
      const users: ConnectionUser[] = [];
      const add = (rule: CompiledRule) => {
        for (const target of rule.definition.targets ?? []) {
          if (target.connection === name)
            users.push({ bus: rule.bus, rule: rule.name, target: target.id });
        }
      };
      fileSet.rules.forEach(add);
      for (const rules of apiRules.values()) sortedApiRules(rules).forEach((r) => add(r.rule));
      return users;
    },
  };
  return registry;
}

/** API rules in routing order: oldest first, then by name, so the order survives restarts. */
function sortedApiRules(rules: ReadonlyMap<string, ApiRule>): ApiRule[] {
  return [...rules.values()].sort(
    (a, b) =>
      a.stored.createdAtMs - b.stored.createdAtMs ||
      (a.rule.name < b.rule.name ? -1 : a.rule.name > b.rule.name ? 1 : 0),
  );
}
