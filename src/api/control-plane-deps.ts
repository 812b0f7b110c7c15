/** What the control-plane routes are given: the parts of a running Relaybus they serve. */
import type { RelaybusConfig } from "../config/defaults.js";
import type { Archiver } from "../delivery/archiver.js";
import type { ApiKeys } from "./auth-keys.js";
import type { AuditLog } from "./audit-log.js";
import type { AuthGuard } from "./auth-guard.js";
import type { CircuitSnapshot } from "../delivery/circuit-breaker.js";
import type { ReplayRunner } from "../delivery/replay-runner.js";
import type { Storage } from "../log/log-engine.js";
import type { BillingPeriods } from "../metering/billing-period.js";
import type { RuleRegistry } from "../rules/rule-registry.js";
import type { StreamManager } from "../streams/stream-manager.js";
import type { BusScheduleStatus } from "../streams/bus-scheduler.js";

/** A schedule as `GET /v1/schedules` shows it: its status, and the rule file it is written in. */
export interface ScheduleView extends BusScheduleStatus {
  origin: { kind: "file"; file: string; line: number };
}
import type { Logger } from "../types.js";

export interface ControlPlaneDeps {
  config: RelaybusConfig;
  storage: Storage;
  registry: RuleRegistry;
  logger: Logger;
  /** The package version, shown by `GET /healthz`. */
  version: string;
  /** Tells delivery that deliveries are due now (after a redrive of dead letters). */
  wakeDelivery?: () => void;
  /**
   * The live circuit of a target, from the delivery engine, for its status; undefined when
   * the engine holds none for it (nothing sent since start, or no breaker).
   */
  targetCircuit?: (bus: string, rule: string, targetId: string) => CircuitSnapshot | undefined;
  /** Told when an archive is created or deleted, so it starts or stops following its bus. */
  archiver: Pick<Archiver, "refresh">;
  /** Starts and cancels replays. */
  replays: Pick<ReplayRunner, "start" | "cancel">;
  /** Billing periods: previews, records, closing. */
  billing: BillingPeriods;
  /** API keys: issuing, listing, revoking (`/v1/keys`). */
  apiKeys: ApiKeys;
  /** Checks every control-plane request against the API keys (src/api/auth-guard.ts). */
  auth: AuthGuard;
  /** Event streams: definitions, lifecycle, capacity, dead letters (`/v1/streams`). */
  streams: StreamManager;
  /** The rule files' schedules with how each is doing (`/v1/schedules`). */
  schedules: () => ScheduleView[];
  /** Records each change a route makes, after it succeeded (src/api/audit-log.ts). */
  audit: AuditLog;
  /**
   * Brings usage up to date (the publish meter to the end of the log, then the rollup)
   * before a usage report; absent when metering is off.
   */
  syncUsage?: () => Promise<unknown>;
  /**
   * With dispatch shared by a cluster: the offset of `bus` through which every event was
   * dispatched and finished by some node (the shared consumer's acknowledged floor). Absent:
   * this node's dispatch checkpoint says it.
   */
  dispatchedThrough?: (bus: string) => Promise<number>;
}

/**
 * The offset of `bus` through which the dispatcher has routed every event and recorded its
 * deliveries (done, or durably pending): with dispatch shared by a cluster, the cluster's
 * finished floor; otherwise this node's dispatch checkpoint. 0 before the first event.
 */
export async function dispatchedOffset(deps: ControlPlaneDeps, bus: string): Promise<number> {
  return deps.dispatchedThrough !== undefined ? await deps.dispatchedThrough(bus) : deps.storage.deliveries.checkpoint(bus);
}
