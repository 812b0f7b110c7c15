/**
 * The scheduled billing job: at `billing.periodCron` (UTC; default midnight on the 1st) it
 * closes every ended period not closed yet (see `BillingPeriods.closeEnded`). node-cron
 * runs it; `noOverlap` keeps a slow close from starting twice. A run missed because the
 * service was down is made up by the next run, which closes every ended period still open
 * (or at once through `POST /v1/billing/periods/{period}:close`).
 */
import { createTask, type ScheduledTask } from "node-cron";
import { RelaybusError, errorMessage } from "../errors.js";
import type { Logger } from "../types.js";
import type { BillingPeriods } from "./billing-period.js";

/** The running job. */
export interface BillingSchedule {
  /** When the job runs next, ms since the epoch. */
  nextRunMs(): number | undefined;
  /** Stops the job; a run in progress finishes. */
  close(): Promise<void>;
}

/**
 * Starts the job. Throws `InvalidConfig` naming `billing.periodCron` when the expression
 * is not one node-cron accepts.
 */
export function scheduleBillingClose(options: {
  cron: string;
  periods: Pick<BillingPeriods, "closeEnded">;
  logger: Logger;
}): BillingSchedule {
  const { periods, logger } = options;
  let running: Promise<unknown> = Promise.resolve();
  let task: ScheduledTask;
  try {
    task = createTask(
      options.cron,
      () => {
        running = periods
          .closeEnded()
          .then((closed) => {
            if (closed.length > 0) logger.info("billing job closed periods", { periods: closed });
          })
          .catch((error: unknown) =>
            logger.error("billing job failed", { error: errorMessage(error) }),
          );
        return running;
      },
      { timezone: "UTC", name: "billing-close", noOverlap: true },
    );
  } catch (error) {
    throw new RelaybusError("InvalidConfig", `billing.periodCron: ${errorMessage(error)}`, {
      details: { setting: "billing.periodCron" },
      cause: error,
    });
  }
  void task.start();
  return {
    nextRunMs: () => task.getNextRun()?.getTime(),
    async close() {
      await task.destroy();
      await running;
    },
  };
}
