/**
 * The rule registry's contract (`rule-registry.ts` implements it): what it offers the API,
 * the dispatcher and delivery, and the views of rules, buses and reloads it hands out, not
 * the compiled rules the router uses.
 */
import type { RoutedTarget, Router } from "../delivery/router.js";
import type { ConnectionDefinition } from "../log/connection-store.js";
import type { CloudEvent } from "../types.js";
import type { CompiledRule } from "./compile-rule.js";
import type { FileConnection } from "./load-rule-files.js";
import type { RuleDefinition, RuleOrigin } from "./model.js";
import type { NameChanges } from "./rule-file-set.js";
import type { RuleProblem } from "./rule-problem.js";

/** What a reload of the rule files did ({@link RuleRegistryDeps.onFilesReloaded}). */
export type RuleFilesReload =
  | {
      outcome: "succeeded";
      /** False when the files hold the same rules and connections as before. */
      changed: boolean;
      summary: ReloadSummary;
      /** Per bus with a change, its file rules added, removed or changed. */
      buses: Record<string, NameChanges>;
      /** The files' connections added, removed or changed. */
      connections: NameChanges;
    }
  | { outcome: "refused"; problems: RuleProblem[] };

/** A rule as the API shows it. */
export interface RuleView {
  bus: string;
  name: string;
  enabled: boolean;
  origin: RuleOrigin;
  definition: RuleDefinition;
  /** API rules only: when created and last changed, ms since the epoch. */
  createdAtMs?: number;
  updatedAtMs?: number;
}

/**
 * Why a bus exists: `default` always does; `file` when a rule file declares it; `catalog`
 * when it was created through the API; `api-rules` when API rules are stored for it (so they
 * stay reachable even after the file that declared their bus went away).
 */
export type BusOrigin = "default" | "file" | "catalog" | "api-rules";

/** A bus as the API shows it. */
export interface BusView {
  name: string;
  description?: string;
  origins: BusOrigin[];
  /** Rule files that declare the bus. */
  files: string[];
  /** Rules in all, and by origin. */
  rules: number;
  fileRules: number;
  apiRules: number;
  /** Catalog buses only. */
  createdAtMs?: number;
  /**
   * Present (true) on a system bus, marked so by a rule file or at creation: its publishes
   * are metered like any bus's and priced at 0.
   */
  system?: true;
}

/** What a successful reload of the rule files loaded. */
export interface ReloadSummary {
  files: number;
  rules: number;
  buses: number;
}

/** A target that uses a connection. */
export interface ConnectionUser {
  bus: string;
  rule: string;
  target: string;
}

/** The rule registry: a {@link Router} plus the management of buses and rules. */
export interface RuleRegistry extends Router {
  /**
   * The targets `event` of `bus` goes to, in rule order (file rules, then API rules by
   * creation), then target order. While a bus's machine is rebuilt aside, rules changed since
   * come after the others.
   */
  route(bus: string, event: CloudEvent): RoutedTarget[];
  /** Resolves once no bus's pattern machine is being rebuilt aside. */
  routingSettled(): Promise<void>;
  /** Whether the bus exists: `default`, declared by a rule file, or created through the API. A memory lookup. */
  busExists(name: string): boolean;
  /** Throws `BusNotFound` unless the bus exists. */
  assertBusExists(name: string): void;
  listBuses(): BusView[];
  /** Creates a bus in the catalog. Throws `BusAlreadyExists` when a bus of that name exists. */
  createBus(bus: { name: string; description?: string; system?: boolean }): BusView;
  /** True when the bus is a system bus (a rule file or its creation says so); a map lookup. */
  isSystemBus(name: string): boolean;
  /**
   * Deletes a bus created through the API, with its API rules when `force`. Throws
   * `BusNotFound`, `BusProtected` (`default`, or declared by a rule file) or `BusHasRules`.
   */
  deleteBus(name: string, options?: { force?: boolean }): void;
  /**
   * Reads the rule files again and swaps them in. Throws `RulesReloadFailed` with
   * `details.problems` (each a {@link RuleProblem}) when any file has a problem; then the
   * running rules stay.
   */
  reloadFiles(): Promise<ReloadSummary>;
  /** Reads the API buses and rules again from the catalog (after another writer changed it). */
  reloadCatalog(): void;
  /**
   * Creates (`create`) or replaces (`replace`) an API rule. Validates and compiles it first:
   * `InvalidRule`, `InvalidEventPattern`, `InvalidTransform`; then `BusNotFound`,
   * `RuleManagedByFile`, `RuleAlreadyExists` or `TooManyRules` (create), or `RuleNotFound` (replace).
   */
  putRule(bus: string, definition: unknown, options: { mode: "create" | "replace" }): RuleView;
  /** Enables or disables an API rule; `RuleManagedByFile` for file rules, `RuleNotFound`. */
  setEnabled(bus: string, name: string, enabled: boolean): RuleView;
  /** Deletes an API rule; `RuleManagedByFile` for file rules, `RuleNotFound`. */
  deleteRule(bus: string, name: string): void;
  /** The rule of either origin; `BusNotFound`, `RuleNotFound`. */
  getRule(bus: string, name: string): RuleView;
  /** The rules of a bus, file rules first; `BusNotFound`. */
  listRules(bus: string): RuleView[];
  /**
   * The rule as routing runs it (its targets resolved and compiled), enabled or not;
   * undefined when the bus or the rule does not exist. For redriving dead letters through a
   * target's current definition.
   */
  compiledRule(bus: string, name: string): CompiledRule | undefined;
  /**
   * The compiled target `targetId` of rule `rule` on `bus` (either origin), or undefined.
   * Map lookups only: delivery asks it on every attempt for the target's file secrets.
   */
  findTarget(bus: string, rule: string, targetId: string): RoutedTarget | undefined;
  /**
   * Reloads the files whenever they change (debounced); a refused reload is logged with its
   * problems and the running rules stay. Returns a function that stops watching.
   */
  watch(): () => void;
  /** Stops every watcher and waits for a reload in progress. */
  close(): Promise<void>;
  /**
   * The connection target `targetId` of rule `rule` on `bus` names, or undefined (no such
   * target, or none named). Map lookups only: delivery asks it on every attempt.
   */
  connectionOf(bus: string, rule: string, targetId: string): string | undefined;
  /** The connection of that name: a rule file's, else one created through the API. A memory lookup. */
  findConnection(name: string): ConnectionDefinition | undefined;
  /** The rule files' connections, in file then definition order. */
  fileConnections(): readonly FileConnection[];
  /** The targets of every rule (either origin, enabled or not) that name connection `name`. */
  connectionUsers(name: string): ConnectionUser[];
}
