/**
 * Routing tables: for each bus, its enabled rules and one pattern machine built from them,
 * which is what `route` asks once per event.
 *
 * A machine is immutable, so a rule change means a new one. A bus with few rules gets it at
 * once (building a machine of 2,000 rules takes a few milliseconds). A bus with many rules
 * keeps matching on the machine it has while the new one is built aside, in slices that leave
 * the event loop free, and the new one is swapped in when done. Meanwhile the change is
 * already in force: rules the running machine does not hold yet are matched one by one, and
 * rules it holds that were removed or replaced are left out of its answers. So a rule is routed
 * from the moment the API answers, and matching never waits for a build.
 *
 * @module
 */

import type { RoutedTarget } from "../delivery/router.js";
import { buildPatternMachine, buildPatternMachineAside, type PatternMachine } from "../patterns/pattern-machine.js";
import type { CloudEvent, Logger } from "../types.js";
import type { CompiledRule } from "./compile-rule.js";

/** Buses with at most this many rules rebuild their machine synchronously. */
export const DEFAULT_SYNC_BUILD_MAX_RULES = 2_000;

interface BusTable {
  /** The bus's enabled rules with targets, in routing order. */
  readonly rules: readonly CompiledRule[];
  /** Built from `machineRules`, which may lag `rules` while a newer machine builds aside. */
  readonly machine: PatternMachine<CompiledRule>;
  readonly machineRules: ReadonlySet<CompiledRule>;
  /** In `rules`, not in the machine: matched one by one until the next machine lands. */
  readonly pending: readonly CompiledRule[];
  /** In the machine, no longer in `rules`: dropped from its answers. */
  readonly retired: ReadonlySet<CompiledRule>;
}

const NO_RULES: ReadonlySet<CompiledRule> = new Set();

function sameRules(a: readonly CompiledRule[], b: readonly CompiledRule[]): boolean {
  return a.length === b.length && a.every((rule, index) => rule === b[index]);
}

function fullTable(rules: readonly CompiledRule[]): BusTable {
  const machine = buildPatternMachine(rules.map((rule) => ({ key: rule, pattern: rule.pattern })));
  return { rules, machine, machineRules: new Set(rules), pending: [], retired: NO_RULES };
}

/** A table whose machine holds `machineRules` while the bus's rules are `rules`. */
function laggingTable(
  rules: readonly CompiledRule[],
  machine: PatternMachine<CompiledRule>,
  machineRules: ReadonlySet<CompiledRule>,
): BusTable {
  const wanted = new Set(rules);
  return {
    rules,
    machine,
    machineRules,
    pending: rules.filter((rule) => !machineRules.has(rule)),
    retired: new Set([...machineRules].filter((rule) => !wanted.has(rule))),
  };
}

export class BusRouting {
  private tables = new Map<string, BusTable>();
  private readonly building = new Set<string>();
  private readonly syncBuildMaxRules: number;
  private readonly logger: Logger;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private resolveIdle: (() => void) | undefined;

  constructor(options: { syncBuildMaxRules?: number; logger: Logger }) {
    this.syncBuildMaxRules = options.syncBuildMaxRules ?? DEFAULT_SYNC_BUILD_MAX_RULES;
    this.logger = options.logger;
  }

  /**
   * Sets every bus's enabled rules, in routing order. A bus whose list did not change keeps its
   * machine; a bus left out has no routes.
   */
  update(rulesByBus: ReadonlyMap<string, readonly CompiledRule[]>): void {
    const next = new Map<string, BusTable>();
    for (const [bus, rules] of rulesByBus) {
      const current = this.tables.get(bus);
      if (current !== undefined && sameRules(current.rules, rules)) next.set(bus, current);
      else if (current === undefined || rules.length <= this.syncBuildMaxRules) next.set(bus, fullTable(rules));
      else {
        next.set(bus, laggingTable(rules, current.machine, current.machineRules));
        this.buildAside(bus);
      }
    }
    this.tables = next;
  }

  /** The targets of every rule of `bus` that `event` matches. */
  route(bus: string, event: CloudEvent): RoutedTarget[] {
    const table = this.tables.get(bus);
    if (table === undefined) return [];
    const targets: RoutedTarget[] = [];
    const matched = table.machine.match(event);
    for (let i = 0; i < matched.length; i++) {
      const rule = matched[i]!;
      if (table.retired.size > 0 && table.retired.has(rule)) continue;
      for (const target of rule.targets) targets.push(target);
    }
    for (const rule of table.pending) {
      if (rule.matches(event)) for (const target of rule.targets) targets.push(target);
    }
    return targets;
  }

  /** Resolves once no machine is being built aside (for tests and orderly shutdown). */
  settled(): Promise<void> {
    return this.idle;
  }

  /** Stops building; tables stay as they are. */
  stop(): void {
    this.stopped = true;
  }

  private buildAside(bus: string): void {
    if (this.building.has(bus)) return; // the running build re-checks when it lands
    if (this.resolveIdle === undefined) this.idle = new Promise((resolve) => (this.resolveIdle = resolve));
    this.building.add(bus);
    const rules = this.tables.get(bus)?.rules ?? [];
    const started = performance.now();
    let built = false;
    buildPatternMachineAside(rules.map((rule) => ({ key: rule, pattern: rule.pattern })))
      .then((machine) => {
        built = true;
        const current = this.tables.get(bus);
        if (this.stopped || current === undefined) return;
        const table = laggingTable(current.rules, machine, new Set(rules));
        const tables = new Map(this.tables);
        tables.set(bus, table);
        this.tables = tables;
        this.logger.info("pattern machine rebuilt", {
          bus,
          rules: rules.length,
          states: machine.stateCount,
          ms: Math.round(performance.now() - started),
        });
      })
      .catch((error: unknown) => {
        this.logger.error("pattern machine rebuild failed; rules stay matched one by one", {
          bus,
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => {
        this.building.delete(bus);
        const table = this.tables.get(bus);
        // Rules changed during the build: build again from the rules as they are now.
        if (built && !this.stopped && table !== undefined && (table.pending.length > 0 || table.retired.size > 0)) {
          this.buildAside(bus);
        }
        if (this.building.size === 0) {
          this.resolveIdle?.();
          this.resolveIdle = undefined;
        }
      });
  }
}
