/**
 * The distributed storage: the event log in NATS JetStream (`jetstream-log.ts`), shared by
 * every node of a cluster; buses, API rules, connections, dead letters, signing secrets,
 * target states, API streams and their progress, and usage shared through a JetStream
 * key-value bucket (`shared-state.ts`); the rest (pending deliveries, traces, archives,
 * replays) in this node's own state file (`relaybus-state.db` in its data directory), which
 * also mirrors the shared part.
 */
import type Database from "better-sqlite3";
import { connect, type NatsConnection } from "nats";
import type { JetStreamLogConfig } from "../../config/defaults.js";
import { errorMessage, RelaybusError } from "../../errors.js";
import { silentLogger, systemClock, type Clock, type Logger } from "../../types.js";
import type { Storage } from "../log-engine.js";
import { openStateFile } from "../sqlite/open-sqlite-storage.js";
import { createSqliteOutbox } from "../sqlite/sqlite-outbox.js";
import { createStateStores } from "../sqlite/state-stores.js";
import { createJetStreamLog, type JetStreamLog } from "./jetstream-log.js";
import { jetStreamNames } from "./jetstream-names.js";
import type { Leadership } from "../leadership.js";
import { startJetStreamLeadership } from "./jetstream-leadership.js";
import { openJetStreamParkedDeliveries } from "./jetstream-parked-deliveries.js";
import type { ParkedDeliveries } from "../log-engine.js";
import { startSharedState, type SharedState } from "./shared-state.js";
import { shareCatalog, shareConnections } from "./shared-stores.js";
import { shareStateTables } from "./shared-tables.js";
import { shareUsage } from "./shared-usage.js";

/** Events one publish-meter tally reads from the log at most. */
const TALLY_READ_LIMIT = 4_000;

export interface JetStreamStorageOptions {
  /** This node's directory, for its state file; created if missing. */
  dataDir: string;
  jetstream: JetStreamLogConfig;
  /** Count delivery attempts, replays and redrives into usage. Default true. */
  metering?: boolean;
  clock?: Clock;
  logger?: Logger;
}

/** The JetStream storage: the {@link Storage} seam plus the connection. */
export interface JetStreamStorage extends Storage {
  log: JetStreamLog;
  readonly connection: NatsConnection;
  /** This node's state file, for tests (as `SqliteStorage.stateDatabase`): synchronous calls only. */
  readonly stateDatabase: Database.Database;
}

/** Options of {@link openJetStreamLog}: the engine alone, with a connection of its own. */
export interface JetStreamLogOptions
  extends Pick<JetStreamLogConfig, "servers" | "replicas" | "streamPrefix" | "duplicateWindowSeconds" | "claimSeconds"> {
  clock?: Clock;
  logger?: Logger;
}

/**
 * Connects to the cluster and opens the log alone: for tests and tools. `close()` closes the
 * connection too.
 */
export async function openJetStreamLog(options: JetStreamLogOptions): Promise<JetStreamLog> {
  const connection = await connectToCluster(options.servers);
  try {
    const log = await createJetStreamLog({
      connection,
      names: jetStreamNames(options.streamPrefix),
      replicas: options.replicas,
      duplicateWindowSeconds: options.duplicateWindowSeconds,
      claimSeconds: options.claimSeconds,
      clock: options.clock ?? systemClock,
      logger: options.logger ?? silentLogger,
    });
    return {
      ...log,
      async close() {
        await log.close();
        await connection.drain().catch(() => connection.close());
      },
    };
  } catch (error) {
    await connection.close();
    throw error;
  }
}

/**
 * Connects, opens the log and this node's state file. Throws `ServiceUnavailable` when no
 * server of the cluster answers, as the SQLite storage does when its files cannot be opened.
 */
export async function openJetStreamStorage(options: JetStreamStorageOptions): Promise<JetStreamStorage> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const connection = await connectToCluster(options.jetstream.servers);
  let log: JetStreamLog;
  try {
    log = await createJetStreamLog({
      connection,
      names: jetStreamNames(options.jetstream.streamPrefix),
      replicas: options.jetstream.replicas,
      duplicateWindowSeconds: options.jetstream.duplicateWindowSeconds,
      claimSeconds: options.jetstream.claimSeconds,
      clock,
      logger,
    });
  } catch (error) {
    await connection.close();
    throw error;
  }
  let state;
  try {
    state = openStateFile(options.dataDir, logger);
  } catch (error) {
    await log.close();
    await connection.close();
    throw error;
  }
  const local = createStateStores({
    state,
    clock,
    meterUsage: options.metering ?? true,
    logReader: (bus, afterOffset, limit) => log.tallyPublished(bus, afterOffset, Math.min(limit, TALLY_READ_LIMIT)),
  });
  // Buses, API rules and connections are shared by every node (shared-state.ts), and so are
  // dead letters, signing secrets and target states (row by row, by triggers: shared-tables.ts).
  let shared: SharedState | undefined;
  const sharing = { db: state, outbox: createSqliteOutbox(state, clock), changed: () => shared?.changed() };
  const catalog = shareCatalog(local.catalog, sharing);
  const connections = shareConnections(local.connections, sharing);
  const listeners = new Set<(kinds: ReadonlySet<string>) => void>();
  /** The lease, once taken up below: the shared stream runtimes ask whether this node leads. */
  const leadershipRef: { current?: Leadership } = {};
  try {
    const tables = shareStateTables({
      db: state,
      targetSecrets: local.targetSecrets,
      targetStates: local.targetStates,
      changed: sharing.changed,
      isLeader: () => leadershipRef.current?.isLeader === true,
    });
    shared = await startSharedState({
      connection,
      bucket: `${options.jetstream.streamPrefix}_STATE`,
      replicas: options.jetstream.replicas,
      outbox: sharing.outbox,
      kinds: [...catalog.kinds, ...connections.kinds, ...tables, shareUsage({ db: state, clock, changed: sharing.changed })],
      logger,
      onApplied: (kinds) => {
        for (const listener of listeners) listener(kinds);
      },
    });
  } catch (error) {
    await log.close();
    await connection.close();
    state.close();
    throw new RelaybusError("ServiceUnavailable", `cannot open the shared state in JetStream: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const sharedState = shared;
  let leadership: Leadership;
  try {
    leadership = await startJetStreamLeadership({
      connection,
      bucket: `${options.jetstream.streamPrefix}_LEASES`,
      replicas: options.jetstream.replicas,
      name: "singleton",
      logger,
    });
    leadershipRef.current = leadership;
  } catch (error) {
    await sharedState.close();
    await log.close();
    await connection.close();
    state.close();
    throw new RelaybusError("ServiceUnavailable", `cannot open the cluster's leases in JetStream: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  let parkedDeliveries: ParkedDeliveries;
  try {
    const names = jetStreamNames(options.jetstream.streamPrefix);
    parkedDeliveries = await openJetStreamParkedDeliveries({
      connection,
      jsm: await connection.jetstreamManager(),
      stream: names.parkedStream,
      subject: names.parkedSubject,
      replicas: options.jetstream.replicas,
      claimMs: options.jetstream.claimSeconds * 1_000,
      clock,
    });
  } catch (error) {
    await leadership.close();
    await sharedState.close();
    await log.close();
    await connection.close();
    state.close();
    throw new RelaybusError("ServiceUnavailable", `cannot open the parked deliveries in JetStream: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  let closing: Promise<void> | undefined;
  return {
    ...local,
    parkedDeliveries,
    catalog: catalog.store,
    connections: connections.store,
    log,
    connection,
    stateDatabase: state,
    leadership,
    onSharedStateChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closing ??= (async () => {
        try {
          // Shared state first: a new leader then starts from this node's last stream progress.
          await sharedState.close();
          await leadership.close();
          await log.close();
          await connection.drain().catch(() => connection.close());
        } finally {
          try {
            local.deliveries.flushCheckpoints();
          } finally {
            state.close();
          }
        }
      })();
      return closing;
    },
  };
}

async function connectToCluster(servers: readonly string[]): Promise<NatsConnection> {
  try {
    return await connect({
      servers: [...servers],
      name: "relaybus",
      // Keep trying for as long as the node runs: a cluster losing a server is normal.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
    });
  } catch (error) {
    throw new RelaybusError(
      "ServiceUnavailable",
      `cannot reach NATS at ${servers.join(", ")} (log.jetstream.servers): ${error instanceof Error ? error.message : String(error)}`,
      { details: { servers }, cause: error },
    );
  }
}
