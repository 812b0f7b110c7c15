/** `relaybus serve`: runs the bus until SIGINT or SIGTERM; SIGHUP reloads the rule files. */
import type { Command } from "commander";
import { resolve } from "node:path";
import { loadConfig, type ConfigFlags } from "../config/load-config.js";
import { isRelaybusError } from "../errors.js";
import { startRelaybus } from "../api/service.js";
import { createConsoleLogger } from "../types.js";

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("serve the bus (ingest, rules, delivery) over HTTP")
    .option("-c, --config <file>", "YAML configuration file (also RELAYBUS_CONFIG)")
    .option("--host <address>", "address to listen on (also RELAYBUS_HOST; default 127.0.0.1)")
    .option("-p, --port <n>", "TCP port (also RELAYBUS_PORT; default 8080)")
    .option("--data-dir <dir>", "directory of relaybus.db (also RELAYBUS_DATA_DIR; default ./data)")
    .option("--rules-dir <dir>", "directory of rule files (also RELAYBUS_RULES_DIR; default ./rules)")
    .option("--log-engine <engine>", "sqlite (default) or jetstream (log.engine; also RELAYBUS_LOG_ENGINE)")
    .option(
      "--nats-servers <urls>",
      "JetStream engine: comma-separated NATS URLs (log.jetstream.servers; also RELAYBUS_NATS_SERVERS)",
    )
    .option(
      "--allow-loopback-targets",
      "deliver to webhooks on this machine (delivery.outbound.allowLoopback; also RELAYBUS_OUTBOUND_ALLOW_LOOPBACK)",
    )
    .option(
      "--allow-unauthenticated",
      "serve a non-loopback --host while no API key exists (auth.allowUnauthenticated; also RELAYBUS_ALLOW_UNAUTHENTICATED)",
    )
    .action(async (flags: ConfigFlags) => {
      const logger = createConsoleLogger();
      let config;
      try {
        config = loadConfig(flags);
      } catch (error) {
        if (isRelaybusError(error, "InvalidConfig")) {
          console.error(error.message);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
      let service;
      try {
        service = await startRelaybus(config, { logger });
      } catch (error) {
        // A start refused for its settings (a non-loopback host without keys): say why, exit 2.
        if (isRelaybusError(error, "InvalidConfig")) {
          console.error(error.message);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
      const log =
        config.log.engine === "jetstream"
          ? `jetstream ${config.log.jetstream.servers.join(",")}`
          : resolve(config.dataDir, "relaybus.db");
      logger.info(`Relaybus listening on ${service.url}`, { log, rules: resolve(config.rulesDir) });
      if (config.server.host === "127.0.0.1" || config.server.host === "localhost" || config.server.host === "::1") {
        logger.info("listening on loopback only; set --host to serve other machines");
      }
      if (config.delivery.outbound.allowLoopback) {
        logger.warn("deliveries to loopback addresses are allowed (delivery.outbound.allowLoopback): for trying Relaybus on one machine, not for production");
      }

      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info(`${signal}: stopping`);
        service.close().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error("stop failed", { error: String(error) });
            process.exit(1);
          },
        );
      };
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGHUP", () => {
        service.registry.reloadFiles().then(
          (summary) => logger.info("SIGHUP: rules reloaded", { ...summary }),
          (error: unknown) => logger.warn("SIGHUP: reload refused; the running rules stay", {
            error: error instanceof Error ? error.message : String(error),
          }),
        );
      });
    });
}
