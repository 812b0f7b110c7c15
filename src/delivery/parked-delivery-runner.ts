/**
 * Takes parked deliveries back when they are due (`parked-deliveries.ts`): each node claims
 * due ones from the cluster's queue, stores them as its own pending deliveries, and wakes
 * its delivery engine; the claim keeper holds each claim until the delivery ends, or parks
 * it again if it keeps retrying.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors.js";
import type { DeliveryStore } from "../log/log-engine.js";
import type { ParkedDeliveries } from "../log/log-engine.js";
import type { Clock, Logger } from "../types.js";
import type { ClaimKeeper } from "./claim-keeper.js";
import type { DeliveryEngine } from "./delivery-engine.js";

/** Parked deliveries claimed at once. */
const CLAIM_BATCH = 100;
/** How long one claim waits for due deliveries. */
const CLAIM_WAIT_MS = 2_000;

export interface ParkedDeliveryRunnerOptions {
  parked: ParkedDeliveries;
  deliveries: DeliveryStore;
  keeper: ClaimKeeper;
  engine: Pick<DeliveryEngine, "wake">;
  clock: Clock;
  logger: Logger;
  failureBackoffMs?: number;
}

export interface ParkedDeliveryRunner {
  close(): Promise<void>;
}

export function startParkedDeliveryRunner(options: ParkedDeliveryRunnerOptions): ParkedDeliveryRunner {
  const { parked, deliveries, keeper, engine, clock, logger } = options;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  const abort = new AbortController();
  let closed = false;

  const run = async () => {
    while (!closed) {
      try {
        const claimed = await parked.claimDue(CLAIM_BATCH, CLAIM_WAIT_MS);
        if (closed || claimed.length === 0) continue; // unacknowledged, they go back
        const nowMs = clock.nowMs();
        deliveries.adopt(claimed.map((c) => ({ ...c.delivery, nextAttemptAtMs: Math.min(c.delivery.nextAttemptAtMs, nowMs) })));
        for (const c of claimed) keeper.hold(c, [c.delivery.id]);
        engine.wake();
      } catch (error) {
        if (closed) return;
        logger.error("delivery: claiming parked deliveries failed; trying again", { error: errorMessage(error) });
        await sleep(failureBackoffMs, undefined, { signal: abort.signal }).catch(() => undefined);
      }
    }
  };
  const running = run();

  return {
    async close() {
      closed = true;
      abort.abort();
      parked.stop();
      await running;
    },
  };
}
