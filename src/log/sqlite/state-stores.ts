/**
 * The stores of the state file (`relaybus-state.db`): everything but the event log. Both
 * storages build them: the SQLite storage beside its log file, the JetStream storage beside
 * a log in JetStream.
 */
import type Database from "better-sqlite3";
import type { Clock } from "../../types.js";
import type { Storage } from "../log-engine.js";
import { createSqliteApiKeys, type SqliteApiKeys } from "./sqlite-api-keys.js";
import { createSqliteArchives } from "./sqlite-archives.js";
import { createSqliteAudit } from "./sqlite-audit.js";
import { createSqliteBilling } from "./sqlite-billing.js";
import { createSqliteCatalog } from "./sqlite-catalog.js";
import { createSqliteConnections } from "./sqlite-connections.js";
import { createSqliteDeliveries, type SqliteDeliveries } from "./sqlite-deliveries.js";
import { createSqliteReplays } from "./sqlite-replays.js";
import { createSqliteSchedules } from "./sqlite-schedules.js";
import { createSqliteStreams } from "./sqlite-streams.js";
import { createSqliteTargetSecrets, type SqliteTargetSecrets } from "./sqlite-target-secrets.js";
import { createSqliteTargetStates, type SqliteTargetStates } from "./sqlite-target-states.js";
import { createSqliteUsage, type SqliteUsageOptions } from "./sqlite-usage.js";

/**
 * The state file's stores: a {@link Storage} without its log and `close`, with the SQLite
 * extras the storages use (flushing checkpoints, forgetting cached target state).
 */
export type StateStores = Omit<Storage, "log" | "close"> & {
  deliveries: SqliteDeliveries;
  targetSecrets: SqliteTargetSecrets;
  targetStates: SqliteTargetStates;
  apiKeys: SqliteApiKeys;
};

export interface StateStoresOptions {
  /** The migrated state file. */
  state: Database.Database;
  clock: Clock;
  /** Count delivery attempts, replays and redrives into usage (`metering.enabled`). */
  meterUsage: boolean;
  /** Where the publish meter's tallies come from (see `SqliteUsageOptions.logReader`). */
  logReader: SqliteUsageOptions["logReader"];
}

export function createStateStores(options: StateStoresOptions): StateStores {
  const { state, clock, meterUsage } = options;
  return {
    catalog: createSqliteCatalog(state),
    deliveries: createSqliteDeliveries({ db: state, clock, meterUsage }),
    targetSecrets: createSqliteTargetSecrets(state),
    archives: createSqliteArchives(state),
    replays: createSqliteReplays(state, { meterUsage, clock }),
    targetStates: createSqliteTargetStates(state),
    connections: createSqliteConnections(state),
    usage: createSqliteUsage({ db: state, logReader: options.logReader, clock }),
    billing: createSqliteBilling(state),
    apiKeys: createSqliteApiKeys(state),
    audit: createSqliteAudit(state),
    streams: createSqliteStreams(state, { clock, meterUsage }),
    schedules: createSqliteSchedules(state),
  };
}
