/**
 * Metering as the service runs it: the publish meter following the log, and the daily
 * rollup scheduled with node-cron (`metering.rollupCron`, UTC; by default every hour at
 * minute 5) and run once at start, so that a rollup a stop interrupted is finished.
 *
 * The other meters need nothing running: delivery attempts (`push`), replayed deliveries
 * (`replay`) and redriven dead letters (`redrive`) are counted by the stores in the
 * transactions that record them.
 */
import { createTask, validate, type ScheduledTask } from "node-cron";
import { RelaybusError, errorMessage } from "../errors.js";
import type { LogEngine } from "../log/log-engine.js";
import type { StreamStore } from "../log/stream-store.js";
import { DAY_MS, dayOf, type UsageStore } from "../log/usage-store.js";
import type { Clock, Logger } from "../types.js";
import { createPublishMeter, type PublishMeter } from "./publish-meter.js";
import { createUsageRollup, type RollupResult, type UsageRollup } from "./usage-rollup.js";

/** A stream pays the idle fee for each day without inflow once it has had none for this long: 30 days. */
export const STREAM_IDLE_AFTER_MS = 30 * DAY_MS;

/** Options of {@link createMetering}. */
export interface MeteringOptions {
  log: Pick<LogEngine, "onAppend">;
  usage: UsageStore;
  /** Every bus, for the publish meter. */
  listBuses: () => readonly string[];
  /** Whether a bus is a system bus (priced at 0); billing asks through {@link Metering.isSystemBus}. */
  isSystemBus: (bus: string) => boolean;
  /** When the rollup runs: a cron expression, evaluated in UTC. */
  rollupCron: string;
  clock: Clock;
  logger: Logger;
  /** The stream-idle meter: streams' idle days, counted before each rollup. Absent: not counted. */
  streams?: Pick<StreamStore, "meterIdleDays">;
  /** Publish meter tuning (tests): events per batch, delay after a wake-up. */
  publishBatchSize?: number;
  publishDelayMs?: number;
}

/** Running metering. */
export interface Metering {
  readonly publishMeter: PublishMeter;
  readonly rollup: UsageRollup;
  /** True for a system bus: metered like any other, priced at 0. */
  isSystemBus(bus: string): boolean;
  /**
   * Brings usage up to date now: the publish meter counts every bus to the end of its log,
   * then the rollup runs. Reports call it so that they never lag the meters' schedules.
   */
  catchUp(): Promise<RollupResult>;
  /** Stops the schedule and the publish meter, and waits for a rollup in progress. */
  close(): Promise<void>;
}

/**
 * Starts metering. Throws `InvalidConfig` when `rollupCron` is not a valid cron expression.
 */
export function createMetering(options: MeteringOptions): Metering {
  const { logger } = options;
  if (!validate(options.rollupCron)) {
    throw new RelaybusError(
      "InvalidConfig",
      `metering.rollupCron: ${JSON.stringify(options.rollupCron)} is not a cron expression (e.g. "5 * * * *": every hour at minute 5)`,
      { details: { field: "metering.rollupCron", value: options.rollupCron } },
    );
  }
  const publishMeter = createPublishMeter({
    log: options.log,
    usage: options.usage,
    listBuses: options.listBuses,
    logger,
    ...(options.publishBatchSize === undefined ? {} : { batchSize: options.publishBatchSize }),
    ...(options.publishDelayMs === undefined ? {} : { delayMs: options.publishDelayMs }),
  });
  const rollup = createUsageRollup({ usage: options.usage, clock: options.clock });
  let running: Promise<unknown> = Promise.resolve();

  const runRollup = async (): Promise<void> => {
    try {
      // Ended days only: today may still see inflow.
      const idleDays = options.streams?.meterIdleDays(dayOf(options.clock.nowMs()), STREAM_IDLE_AFTER_MS) ?? 0;
      if (idleDays > 0) logger.info("metering: stream idle days counted", { idleDays });
      const result = await rollup.run();
      logger.info("metering: usage rolled up", { ...result });
    } catch (error) {
      // Nothing is lost: the hourly rows stay, and the next run rolls the same days again.
      logger.error("metering: usage rollup failed; the next run retries it", { error: errorMessage(error) });
    }
  };
  const task: ScheduledTask = createTask(
    options.rollupCron,
    () => {
      running = runRollup();
      return running;
    },
    { name: "relaybus-usage-rollup", timezone: "UTC", noOverlap: true },
  );
  void task.start();
  running = runRollup();

  return {
    publishMeter,
    rollup,
    isSystemBus: options.isSystemBus,
    async catchUp() {
      await publishMeter.catchUp();
      return rollup.run();
    },
    async close() {
      await task.destroy();
      await publishMeter.close();
      await running;
    },
  };
}
