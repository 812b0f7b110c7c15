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
import { createDeliveryEngine, type DeliveryEngine } from "../delivery/delivery-engine.js";
import { createDispatcher, type Dispatcher } from "../delivery/dispatcher.js";
import { createWebhookSigner } from "../delivery/sign-webhook.js";
import { createWebhookSender, type WebhookSender } from "../delivery/webhook-sender.js";
import { createIngest } from "../events/ingest.js";
import type { SigningSecret, Storage } from "../log/log-engine.js";
import { openSqliteStorage } from "../log/sqlite/index.js";
import { createRuleRegistry, type RuleRegistry } from "../rules/rule-registry.js";
import { systemClock, type Clock, type Logger } from "../types.js";
import { createControlPlaneApp } from "./control-plane.js";
import { createDataPlaneHandler } from "./data-plane.js";
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
  const storage = openSqliteStorage({
    dataDir: resolve(config.dataDir),
    durability: config.log.durability,
    groupCommitMaxEvents: config.log.groupCommitMaxEvents,
    clock,
    logger,
  });

  let registry: RuleRegistry | undefined;
  let dispatcher: Dispatcher | undefined;
  let engine: DeliveryEngine | undefined;
  let sender: WebhookSender | undefined;
  let server: Server | undefined;
  let stopWatching: (() => void) | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;

  const close = async () => {
    if (retentionTimer !== undefined) clearInterval(retentionTimer);
    stopWatching?.();
    if (server !== undefined) await closeServer(server);
    await dispatcher?.close();
    await engine?.close();
    await sender?.close();
    await registry?.close();
    await storage.close();
  };

  try {
    registry = await createRuleRegistry({ catalog: storage.catalog, rulesDir: config.rulesDir, config, logger });
    const reg = registry;
    sender = createWebhookSender({
      connectionsPerOrigin: config.delivery.connectionsPerOrigin,
      outbound: config.delivery.outbound,
      logger,
    });
    engine = createDeliveryEngine({
      deliveries: storage.deliveries,
      sender,
      clock,
      logger,
      maxInFlight: config.delivery.maxInFlight,
      signer: createWebhookSigner({ secretsFor: signingSecretsOf(storage, reg), logger }),
    });
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
    const ingest = createIngest({
      log: storage.log,
      busExists: (name) => reg.busExists(name),
      limits: config.limits,
      clock,
    });

    if (config.watchRules) stopWatching = reg.watch();
    retentionTimer = startRetention(config, storage, clock, logger);

    const dataPlane = createDataPlaneHandler({ ingest, limits: config.limits, logger });
    const deliveryEngine = engine;
    const controlPlane = createControlPlaneApp({
      config,
      storage,
      registry: reg,
      logger,
      version: RELAYBUS_VERSION,
      wakeDelivery: () => deliveryEngine.wake(),
    });
    server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
      if (!dataPlane(req, res)) controlPlane(req, res);
    });
    const port = await listen(server, config.server.port, config.server.host);
    const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
    return {
      url: `http://${host}:${port}`,
      port,
      config,
      storage,
      registry: reg,
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

/** Deletes events past retention that the dispatcher has passed, once a minute. */
function startRetention(config: RelaybusConfig, storage: Storage, clock: Clock, logger: Logger): NodeJS.Timeout {
  const run = () => {
    const cutoffMs = clock.nowMs() - config.log.retentionHours * 3_600_000;
    storage.log
      .pruneOlderThan(cutoffMs, (bus) => storage.deliveries.checkpoint(bus) + 1)
      .then((deleted) => {
        if (deleted > 0) logger.info("retention deleted events", { deleted });
      })
      .catch((error: unknown) => logger.warn("retention failed", { error: String(error) }));
  };
  const timer = setInterval(run, RETENTION_INTERVAL_MS);
  timer.unref();
  return timer;
}
