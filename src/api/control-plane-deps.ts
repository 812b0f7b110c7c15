/** What the control-plane routes are given: the parts of a running Relaybus they serve. */
import type { RelaybusConfig } from "../config/defaults.js";
import type { Storage } from "../log/log-engine.js";
import type { RuleRegistry } from "../rules/rule-registry.js";
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
}
