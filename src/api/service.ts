/**
 * A running Relaybus: storage, rules, ingest, dispatch and delivery behind one HTTP server.
 * This is where the layers are wired together; each part stays ignorant of the others.
 *
 * An event's way through it: data-plane.ts → events/ingest.ts → log (commit, then ack) →
 * delivery/dispatcher.ts (rules route it, deliveries recorded with the checkpoint) →
 * delivery/delivery-engine.ts (attempts, retries, dead letters) → the webhook.
 */
import { createServer, type Server } from "node:http";
import { resolve } from "node:path";
import type { AddressInfo } from "node:net";
import type { RelaybusConfig } from "../config/defaults.js";
import { createArchiver, type Archiver } from "../delivery/archiver.js";
import { createRequestAuthorizer, type RequestAuthorizer } from "../delivery/connection-authorizer.js";
import { createDeliveryEngine, type DeliveryEngine } from "../delivery/delivery-engine.js";
import { createDeliveryCompletion } from "../delivery/delivery-completion.js";
import { createDispatcher, type Dispatcher } from "../delivery/dispatcher.js";
import { startClusterDispatch } from "../delivery/cluster-dispatch.js";
import { createReplayRunner, type ReplayRunner } from "../delivery/replay-runner.js";
import { createTargetHealth } from "../delivery/target-health.js";
import { createWebhookSigner } from "../delivery/sign-webhook.js";
import { createThreadedWebhookSender } from "../delivery/threaded-webhook-sender.js";
import { createWebhookSender, type WebhookSender } from "../delivery/webhook-sender.js";
import { RelaybusError } from "../errors.js";
import { createIngest } from "../events/ingest.js";
import type { SigningSecret, Storage } from "../log/log-engine.js";
import { createBillingPeriods } from "../metering/billing-period.js";
import { scheduleBillingClose, type BillingSchedule } from "../metering/billing-schedule.js";
import { compilePriceTable } from "../metering/price-table.js";
import { openStorage } from "../log/open-storage.js";
import { publishCheckpointName } from "../log/usage-store.js";
import { createMetering, type Metering } from "../metering/metering.js";
import { createRuleRegistry, type RuleRegistry } from "../rules/rule-registry.js";
import { createRelaybusPort } from "../streams/relaybus-port.js";
import { createBusScheduler, type BusScheduler } from "../streams/bus-scheduler.js";
import { createScheduleFileSection } from "../streams/schedule-file-section.js";
import { createStreamManager } from "../streams/stream-manager.js";
import { CONNECTORS } from "../../connectors/index.js";
import { systemClock, type Clock, type Logger } from "../types.js";
import { createAuthGuard, ingestForPrincipal } from "./auth-guard.js";
import { createAuditLog } from "./audit-log.js";
import { createApiKeys } from "./auth-keys.js";
import { createSecretBox } from "./auth-secret-box.js";
import { createControlPlaneApp } from "./control-plane.js";
import { createDataPlaneHandler } from "./data-plane.js";
import { compileArchivePattern } from "./routes/archives-routes.js";
import { RELAYBUS_VERSION } from "../version.js";

/** How often retention runs. */
const RETENTION_INTERVAL_MS = 60_000;

export interface RelaybusService {
  /** The base URL the server listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  config: RelaybusConfig;
  storage: Storage;
  registry: RuleRegistry;
  /** The meters and the usage rollup; undefined when `metering.enabled` is false. */
  metering: Metering | undefined;
  /** Stops taking requests, finishes what is in flight, and closes storage. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  clock?: Clock;
}

/** Opens storage, loads rules, starts dispatch and delivery, and listens. */
export async function startRelaybus(config: RelaybusConfig, options: StartOptions): Promise<RelaybusService> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  // Before storage opens: a bad price is a configuration error, refused at once.
  const prices = compilePriceTable(config.billing);
  const storage = await openStorage(config, { clock, logger });

  let metering: Metering | undefined;
  let registry: RuleRegistry | undefined;
  let dispatcher: Dispatcher | undefined;
  let archiver: Archiver | undefined;
  let replayRunner: ReplayRunner | undefined;
  let engine: DeliveryEngine | undefined;
  let sender: WebhookSender | undefined;
  let authorizer: RequestAuthorizer | undefined;
  let server: Server | undefined;
  let stopWatching: (() => void) | undefined;
  let stopSharedState: (() => void) | undefined;
  let stopLeading: (() => void) | undefined;
  /** With shared dispatch: the lowest offset of a bus the cluster may still dispatch. */
  let dispatchFloor: ((bus: string) => number) | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;
  let billingSchedule: BillingSchedule | undefined;
  // Before the registry: it owns the rule files' `streams:` sections.
  const streams = createStreamManager({ store: storage.streams, config, connectors: CONNECTORS, clock, logger });
  let scheduler: BusScheduler | undefined;
  const schedules = createScheduleFileSection({
    onApply: (loaded) => scheduler?.set(loaded.map((s) => s.schedule)),
  });

  const close = async () => {
    if (retentionTimer !== undefined) clearInterval(retentionTimer);
    await billingSchedule?.close();
    stopWatching?.();
    stopSharedState?.();
    stopLeading?.();
    if (server !== undefined) await closeServer(server);
    await streams.close();
    await scheduler?.close();
    await replayRunner?.close();
    await archiver?.close();
    await dispatcher?.close();
    await engine?.close();
    await sender?.close();
    await authorizer?.close();
    await metering?.close();
    await registry?.close();
    await storage.close();
  };

  // Before the registry, which reports reloads of the rule files to it.
  const audit = createAuditLog({
    store: storage.audit,
    keyName: (id) => storage.apiKeys.get(id)?.name,
    clock,
    logger,
  });

  try {
    registry = await createRuleRegistry({
      catalog: storage.catalog,
      connections: storage.connections,
      rulesDir: config.rulesDir,
      config,
      logger,
      onFilesReloaded: (reload) => audit.recordRuleFiles(reload),
      sectionOwners: [streams.fileSection, schedules],
    });
    const reg = registry;
    // Buses and API rules changed through another node: rebuild this node's routing.
    stopSharedState = storage.onSharedStateChange?.((kinds) => {
      if (kinds.has("bus") || kinds.has("rule")) reg.reloadCatalog();
      // API streams created, changed, paused or resumed through another node.
      if (kinds.has("streamdef") || kinds.has("streamruntime")) void streams.reloadFromStore();
    });
    const senderOptions = {
      connectionsPerOrigin: config.delivery.connectionsPerOrigin,
      outbound: config.delivery.outbound,
      logger,
    };
    // senderThreads 0: requests run on the main thread, as the threads' senders run them.
    sender =
      config.delivery.senderThreads > 0
        ? createThreadedWebhookSender({ ...senderOptions, threads: config.delivery.senderThreads })
        : createWebhookSender(senderOptions);
    authorizer = createRequestAuthorizer({ connections: reg, logger, outbound: config.delivery.outbound, clock });
    // A log shared by several nodes: they split dispatch through a shared consumer, and an
    // event is acknowledged to the cluster once its deliveries ended (cluster-dispatch.ts).
    const sharedConsumer = storage.log.sharedConsumer?.("dispatch");
    const parked = storage.parkedDeliveries;
    const completion =
      sharedConsumer === undefined || parked === undefined ? undefined : createDeliveryCompletion(storage.deliveries);
    engine = createDeliveryEngine({
      deliveries: completion?.store ?? storage.deliveries,
      sender,
      clock,
      logger,
      maxInFlight: config.delivery.maxInFlight,
      signer: createWebhookSigner({ secretsFor: signingSecretsOf(storage, reg), logger }),
      pacingOf: (target) => reg.findTarget(target.bus, target.rule, target.targetId)?.pacing,
      health: createTargetHealth({ states: storage.targetStates, clock, logger }),
      authorizer,
    });
    if (sharedConsumer !== undefined && parked !== undefined && completion !== undefined) {
      const shared = startClusterDispatch({
        consumer: sharedConsumer,
        parked,
        completion,
        parkAfterMs: config.log.jetstream.parkAfterSeconds * 1_000,
        router: reg,
        engine,
        listBuses: () => reg.listBuses().map((b) => b.name),
        onAppend: (listener) => storage.log.onAppend(listener),
        clock,
        logger,
        transformTimeoutMs: config.transform.timeoutMs,
      });
      dispatchFloor = (bus) => shared.firstUnfinished(bus);
      dispatcher = shared;
    } else {
      dispatcher = createDispatcher({
        log: storage.log,
        deliveries: storage.deliveries,
        router: reg,
        engine,
        listBuses: () => reg.listBuses().map((b) => b.name),
        clock,
        logger,
        transformTimeoutMs: config.transform.timeoutMs,
      });
    }
    archiver = createArchiver({
      log: storage.log,
      archives: storage.archives,
      compilePattern: (pattern) => compileArchivePattern(pattern, config),
      logger,
    });
    const wakeEngine = engine;
    replayRunner = createReplayRunner({
      log: storage.log,
      archives: storage.archives,
      replays: storage.replays,
      deliveries: storage.deliveries,
      router: reg,
      wake: () => wakeEngine.wake(),
      clock,
      logger,
      transformTimeoutMs: config.transform.timeoutMs,
    });
    if (config.metering.enabled) {
      metering = createMetering({
        log: storage.log,
        usage: storage.usage,
        listBuses: () => reg.listBuses().map((b) => b.name),
        isSystemBus: (bus) => reg.isSystemBus(bus),
        streams: storage.streams,
        rollupCron: config.metering.rollupCron,
        clock,
        logger,
      });
    }
    const meters = metering;
    const ingest = createIngest({
      log: storage.log,
      busExists: (name) => reg.busExists(name),
      limits: config.limits,
      clock,
    });

    if (config.watchRules) stopWatching = reg.watch();
    retentionTimer = startRetention(config, storage, clock, logger, dispatchFloor);
    const billing = createBillingPeriods({
      store: storage.billing,
      prices,
      tenants: config.billing.tenants,
      isSystemBus: (bus) => reg.isSystemBus(bus),
      rollupDay: (dayMs) => storage.usage.rollUpDay(dayMs),
      // The publish meter counts from the log after the fact: bring it to the log's end
      // before a close or a preview, so the period's last publishes are in it.
      ...(meters === undefined ? {} : { catchUp: async () => void (await meters.catchUp()) }),
      clock,
      logger,
    });
    billingSchedule = scheduleBillingClose({ cron: config.billing.periodCron, periods: billing, logger });

    const apiKeys = createApiKeys({
      store: storage.apiKeys,
      box: createSecretBox(resolve(config.dataDir)),
      required: config.auth.required,
      clock,
      logger,
    });
    assertSafeListen(config, apiKeys.authRequired(), logger);
    const auth = createAuthGuard({ keys: apiKeys, clock });
    const ingestFor = ingestForPrincipal(ingest, (busAllowed) =>
      createIngest({
        log: storage.log,
        busExists: (name) => busAllowed(name) && reg.busExists(name),
        limits: config.limits,
        clock,
      }),
    );
    const dataPlane = createDataPlaneHandler({ ingestFor, auth, limits: config.limits, logger, clock });
    const deliveryEngine = engine;
    const controlPlane = createControlPlaneApp({
      config,
      storage,
      registry: reg,
      logger,
      version: RELAYBUS_VERSION,
      wakeDelivery: () => deliveryEngine.wake(),
      targetCircuit: (bus, rule, targetId) => deliveryEngine.circuitOf({ bus, rule, targetId }, clock.nowMs()),
      archiver,
      replays: replayRunner,
      billing,
      apiKeys,
      auth,
      audit,
      streams,
      schedules: () => {
        const where = new Map(schedules.current().map((s) => [s.schedule.name, s]));
        return (scheduler?.status() ?? []).map((status) => {
          const at = where.get(status.name);
          return { ...status, origin: { kind: "file" as const, file: at?.file ?? "", line: at?.line ?? 0 } };
        });
      },
      ...(meters === undefined ? {} : { syncUsage: () => meters.catchUp() }),
      ...(sharedConsumer === undefined
        ? {}
        : { dispatchedThrough: async (bus: string) => (await sharedConsumer.firstUnfinished(bus)) - 1 }),
    });
    server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
      if (!dataPlane(req, res)) controlPlane(req, res);
    });
    const port = await listen(server, config.server.port, config.server.host);
    const relaybusPort = createRelaybusPort({ log: storage.log, busExists: (name) => reg.busExists(name), limits: config.limits });
    // Streams and schedules run on one node of a cluster: the one that leads.
    const leadership = storage.leadership;
    const startScheduler = () => {
      const running = createBusScheduler({ relaybus: relaybusPort, store: storage.schedules, clock, logger });
      running.set(schedules.current().map((s) => s.schedule));
      return running;
    };
    if (leadership !== undefined) await streams.setActive(leadership.isLeader);
    await streams.start(relaybusPort);
    if (leadership === undefined || leadership.isLeader) scheduler = startScheduler();
    stopLeading = leadership?.onChange((leader) => {
      void streams.setActive(leader);
      if (leader) scheduler ??= startScheduler();
      else {
        const stopping = scheduler;
        scheduler = undefined;
        void stopping?.close();
      }
    });
    const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
    return {
      url: `http://${host}:${port}`,
      port,
      config,
      storage,
      registry: reg,
      metering,
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/**
 * A target's signing secrets in force: those its rule file gives (`signing.secrets`), then
 * the unexpired ones created through the API. Both lookups are in memory.
 */
function signingSecretsOf(
  storage: Storage,
  registry: RuleRegistry,
): (bus: string, rule: string, targetId: string, nowMs: number) => readonly SigningSecret[] {
  return (bus, rule, targetId, nowMs) => {
    const stored = storage.targetSecrets.activeSecrets(bus, rule, targetId, nowMs);
    const fromFile = registry.findTarget(bus, rule, targetId)?.signingSecrets;
    if (fromFile === undefined || fromFile.length === 0) return stored;
    return stored.length === 0 ? fromFile : [...fromFile, ...stored];
  };
}

/**
 * The safe default (issue 8): while auth is off (no API key, `auth.required` false) anyone
 * who reaches the port may publish and change rules, so the server then serves loopback
 * only. A non-loopback `server.host` is refused at start unless `auth.allowUnauthenticated`.
 */
function assertSafeListen(config: RelaybusConfig, authOn: boolean, logger: Logger): void {
  if (authOn) return;
  const host = config.server.host;
  if (isLoopbackHost(host)) {
    logger.info(`auth is off: no API key exists, so the API is open to this machine only (server.host ${host}); create one with \`relaybus keys create --admin\``);
    return;
  }
  if (config.auth.allowUnauthenticated) {
    logger.warn(`auth is off and server.host ${host} is not loopback: anyone who reaches the port may publish and change rules (auth.allowUnauthenticated)`);
    return;
  }
  throw new RelaybusError(
    "InvalidConfig",
    `server.host ${host} is not a loopback address and no API key exists, so anyone who reaches the port could publish and change rules. ` +
      "Start on 127.0.0.1, create a key with `relaybus keys create --admin`, then restart on this host; " +
      "or set auth.required: true (every request then needs a key); " +
      "or accept an open server with auth.allowUnauthenticated: true (--allow-unauthenticated).",
    { details: { field: "server.host" } },
  );
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || bare.startsWith("::ffff:127.");
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    server.closeIdleConnections();
    // Requests in flight get a moment to finish; then their sockets are closed.
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  });
}

/**
 * Once a minute, deletes events past retention that the dispatcher has passed, and succeeded
 * deliveries past the trace retention (`delivery.traceRetentionHours`; with 0 they go at the
 * next pass, so a trace may still show them for up to a minute). The trace pruning also runs
 * once at start, so that a service restarted more often than every minute still prunes.
 */
function startRetention(
  config: RelaybusConfig,
  storage: Storage,
  clock: Clock,
  logger: Logger,
  dispatchFloor: ((bus: string) => number) | undefined,
): NodeJS.Timeout {
  const pruneTraces = async () => {
    try {
      const cutoffMs = clock.nowMs() - config.delivery.traceRetentionHours * 3_600_000;
      const deleted = await storage.deliveries.pruneFinished(cutoffMs);
      if (deleted > 0) logger.info("trace retention deleted succeeded deliveries", { deleted });
    } catch (error) {
      logger.warn("trace retention failed", { error: String(error) });
    }
  };
  // Archived events past their archive's retentionDays, and the events of deleted archives;
  // also once at start, like the traces.
  const pruneArchives = () => {
    storage.archives
      .pruneOlderThan(clock.nowMs())
      .then(({ expired, ofDeletedArchives }) => {
        if (expired + ofDeletedArchives > 0) logger.info("archive retention deleted events", { expired, ofDeletedArchives });
      })
      .catch((error: unknown) => logger.warn("archive retention failed", { error: String(error) }));
  };
  // Audit entries past `audit.retentionDays`, in batches that yield; also once at start.
  const pruneAudit = () => {
    storage.audit
      .pruneOlderThan(clock.nowMs() - config.audit.retentionDays * 86_400_000)
      .then((deleted) => {
        if (deleted > 0) logger.info("audit retention deleted entries", { deleted });
      })
      .catch((error: unknown) => logger.warn("audit retention failed", { error: String(error) }));
  };
  void pruneTraces();
  pruneArchives();
  pruneAudit();
  const run = () => {
    void pruneTraces();
    pruneArchives();
    pruneAudit();
    const cutoffMs = clock.nowMs() - config.log.retentionHours * 3_600_000;
    storage.log
      .pruneOlderThan(cutoffMs, (bus) => keepFrom(storage, bus, config.metering.enabled, dispatchFloor))
      .then((deleted) => {
        if (deleted > 0) logger.info("retention deleted events", { deleted });
      })
      .catch((error: unknown) => logger.warn("retention failed", { error: String(error) }));
  };
  const timer = setInterval(run, RETENTION_INTERVAL_MS);
  timer.unref();
  return timer;
}

/**
 * The lowest offset of `bus` log retention must keep: past what the dispatcher, every archive
 * of the bus and every replay from its log have handed over, and (when metering) what the
 * publish meter has counted.
 */
function keepFrom(
  storage: Storage,
  bus: string,
  metered: boolean,
  dispatchFloor: ((bus: string) => number) | undefined,
): number {
  // Shared dispatch: what the cluster has finished, not what this node has seen.
  let through = dispatchFloor === undefined ? storage.deliveries.checkpoint(bus) : dispatchFloor(bus) - 1;
  if (metered) through = Math.min(through, storage.usage.meterCheckpoint(publishCheckpointName(bus)));
  const archived = storage.archives.lowestCheckpoint(bus);
  if (archived !== undefined) through = Math.min(through, archived);
  const replayed = storage.replays.lowestPosition(bus);
  if (replayed !== undefined) through = Math.min(through, replayed);
  return through + 1;
}
