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
import { isNatsTransient, retryWhile } from "./nats-errors.js";
import { startSharedState, type SharedState } from "./shared-state.js";
import { shareCatalog, shareConnections } from "./shared-stores.js";
import { shareStateTables } from "./shared-tables.js";
import { shareUsage } from "./shared-usage.js";

/** Events one publish-meter tally reads from the log at most. */
const TALLY_READ_LIMIT = 4_000;
/** How long a step of the start is asked again while the cluster does not answer. */
const SET_UP_RETRY_MS = 30_000;

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
  const { jetstream } = options;
  const connection = await connectToCluster(jetstream.servers);
  /** What was opened so far, closed in reverse order should a later step fail. */
  const opened: Array<() => unknown> = [() => connection.close()];
  /**
   * Runs one step of the start, asked again for up to {@link SET_UP_RETRY_MS} while its
   * JetStream requests time out or find no responders: a cluster just started answers so
   * while it elects its leaders (with no meta leader yet, a request goes unanswered until its
   * timeout). Every step makes what is missing and takes what is there, so asking again is
   * harmless. Should it still fail, what was opened so far is closed.
   */
  const step = async <T>(what: string, open: () => Promise<T> | T): Promise<T> => {
    try {
      return await retryWhile(async () => open(), isNatsTransient, SET_UP_RETRY_MS);
    } catch (error) {
      for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => undefined);
      if (error instanceof RelaybusError) throw error;
      throw new RelaybusError("ServiceUnavailable", `cannot open ${what}: ${errorMessage(error)}`, { cause: error });
    }
  };

  const names = jetStreamNames(jetstream.streamPrefix);
  /** The lease, once taken up below: the shared stream runtimes and consumers ask whether this node leads. */
  const leadershipRef: { current?: Leadership } = {};
  const isLeader = () => leadershipRef.current?.isLeader === true;
  const log = await step("the event log in JetStream", () =>
    createJetStreamLog({
      connection,
      names,
      replicas: jetstream.replicas,
      duplicateWindowSeconds: jetstream.duplicateWindowSeconds,
      claimSeconds: jetstream.claimSeconds,
      isLeader,
      clock,
      logger,
    }),
  );
  opened.push(() => log.close());
  const state = await step("the state file", () => openStateFile(options.dataDir, logger));
  opened.push(() => state.close());
  const local = createStateStores({
    state,
    clock,
    meterUsage: options.metering ?? true,
    logReader: (bus, afterOffset, limit) => log.tallyPublished(bus, afterOffset, Math.min(limit, TALLY_READ_LIMIT)),
  });

  // What every node shares (shared-state.ts): buses, API rules and connections through their
  // stores (shared-stores.ts); dead letters, secrets, target states, streams row by row
  // (shared-tables.ts); usage as each node's totals (shared-usage.ts).
  /** The shared state once started below: the stores' writes wake its sender. */
  const sharedRef: { current?: SharedState } = {};
  const sharing = { db: state, outbox: createSqliteOutbox(state, clock), changed: () => sharedRef.current?.changed() };
  const catalog = shareCatalog(local.catalog, sharing);
  const connections = shareConnections(local.connections, sharing);
  const listeners = new Set<(kinds: ReadonlySet<string>) => void>();
  // The triggers are installed once, outside the step below, which may be asked again.
  const sharedKinds = await step("the shared tables of the state file", () => [
    ...catalog.kinds,
    ...connections.kinds,
    ...shareStateTables({
      db: state,
      targetSecrets: local.targetSecrets,
      targetStates: local.targetStates,
      apiKeys: local.apiKeys,
      changed: sharing.changed,
      isLeader,
    }),
    shareUsage({ db: state, clock, changed: sharing.changed }),
  ]);
  const sharedState = await step("the shared state in JetStream", () =>
    startSharedState({
      connection,
      bucket: `${jetstream.streamPrefix}_STATE`,
      replicas: jetstream.replicas,
      outbox: sharing.outbox,
      kinds: sharedKinds,
      logger,
      onApplied: (kinds) => {
        for (const listener of listeners) listener(kinds);
      },
    }),
  );
  sharedRef.current = sharedState;
  opened.push(() => sharedState.close());
  const leadership = await step("the cluster's leases in JetStream", () =>
    startJetStreamLeadership({
      connection,
      bucket: `${jetstream.streamPrefix}_LEASES`,
      replicas: jetstream.replicas,
      name: "singleton",
      logger,
    }),
  );
  leadershipRef.current = leadership;
  opened.push(() => leadership.close());
  const parkedDeliveries = await step("the parked deliveries in JetStream", async () =>
    openJetStreamParkedDeliveries({
      connection,
      jsm: await connection.jetstreamManager(),
      stream: names.parkedStream,
      subject: names.parkedSubject,
      replicas: jetstream.replicas,
      claimMs: jetstream.claimSeconds * 1_000,
      clock,
    }),
  );

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
      // Without it the client makes two Errors (with their stacks) for every request and
      // publish, to point a later timeout at its caller: 15% of the main thread under ingest
      // (a CPU profile of bench:ingest --engine jetstream). Timeouts still fail with the same
      // code; our own errors name the operation.
      noAsyncTraces: true,
    });
  } catch (error) {
    throw new RelaybusError(
      "ServiceUnavailable",
      `cannot reach NATS at ${servers.join(", ")} (log.jetstream.servers): ${error instanceof Error ? error.message : String(error)}`,
      { details: { servers }, cause: error },
    );
  }
}
