/** Opens the storage the configuration names: the embedded SQLite files, or JetStream. */
import { resolve } from "node:path";
import type { RelaybusConfig } from "../config/defaults.js";
import type { Clock, Logger } from "../types.js";
import { openJetStreamStorage } from "./jetstream/index.js";
import type { Storage } from "./log-engine.js";
import { openSqliteStorage } from "./sqlite/index.js";

export async function openStorage(config: RelaybusConfig, options: { clock: Clock; logger: Logger }): Promise<Storage> {
  const dataDir = resolve(config.dataDir);
  if (config.log.engine === "jetstream") {
    return openJetStreamStorage({
      dataDir,
      jetstream: config.log.jetstream,
      metering: config.metering.enabled,
      clock: options.clock,
      logger: options.logger,
    });
  }
  return openSqliteStorage({
    dataDir,
    durability: config.log.durability,
    groupCommitMaxEvents: config.log.groupCommitMaxEvents,
    metering: config.metering.enabled,
    clock: options.clock,
    logger: options.logger,
  });
}
