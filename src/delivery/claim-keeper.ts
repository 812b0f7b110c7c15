/**
 * Holds claims on cluster work (an event claimed for dispatch, a parked delivery claimed to
 * be attempted) while their deliveries run: renews each claim, acknowledges it once all its
 * deliveries ended, and after `parkAfterMs` parks those of its deliveries still waiting for a
 * retry (`parked-deliveries.ts`), so that a target failing for hours holds no claim for hours.
 */
import { errorMessage } from "../errors.js";
import type { DeliveryStore } from "../log/log-engine.js";
import type { ParkedDeliveries } from "../log/log-engine.js";
import type { Clock, Logger } from "../types.js";
import type { DeliveryCompletion } from "./delivery-completion.js";
import type { DeliveryEngine } from "./delivery-engine.js";

/** After this long, deliveries still retrying no longer hold their claim, by default: 10 minutes. */
export const DEFAULT_PARK_AFTER_MS = 600_000;

/** Claimed work, as the keeper handles it. */
export interface Claim {
  ack(): void;
  extend(): void;
}

export interface ClaimKeeperOptions {
  /** The node's delivery store (the one the engine records its attempts in). */
  deliveries: DeliveryStore;
  completion: DeliveryCompletion;
  parked: ParkedDeliveries;
  /** Lets go of the deliveries to park that it holds queued. */
  engine: Pick<DeliveryEngine, "release">;
  /** How long a claim lasts without renewal: claims are renewed three times within it. */
  claimMs: number;
  clock: Clock;
  logger: Logger;
  parkAfterMs?: number;
}

export interface ClaimKeeper {
  /** Holds `claim` until every one of `deliveryIds` (pending now) has ended or was parked. */
  hold(claim: Claim, deliveryIds: readonly string[]): void;
  /** Claims held. */
  readonly holding: number;
  /** Stops renewing (the claims run out and go to other nodes) and waits for parks under way. */
  close(): Promise<void>;
}

interface Held {
  claim: Claim;
  ids: Set<string>;
  sinceMs: number;
  parking: boolean;
}

export function createClaimKeeper(options: ClaimKeeperOptions): ClaimKeeper {
  const { deliveries, completion, parked, engine, clock, logger } = options;
  const parkAfterMs = options.parkAfterMs ?? DEFAULT_PARK_AFTER_MS;
  const held = new Set<Held>();
  const parking = new Set<Promise<void>>();

  const park = async (entry: Held): Promise<void> => {
    entry.parking = true;
    // Not those in flight: they end (or retry) first, and are parked later if need be.
    const taken = deliveries.take(engine.release([...entry.ids]));
    try {
      if (taken.length === 0) return;
      await parked.park(taken);
      const ids = taken.map((d) => d.id);
      for (const id of ids) entry.ids.delete(id);
      completion.settle(ids);
      logger.info("delivery: deliveries still retrying were parked in the cluster", { deliveries: ids.length });
    } catch (error) {
      deliveries.adopt(taken); // not parked: they go on from here
      logger.warn("delivery: could not park deliveries in the cluster; they retry from this node", {
        deliveries: taken.length,
        error: errorMessage(error),
      });
    } finally {
      entry.parking = false;
      entry.sinceMs = clock.nowMs();
    }
  };

  const timer = setInterval(() => {
    const nowMs = clock.nowMs();
    for (const entry of held) {
      entry.claim.extend();
      if (!entry.parking && nowMs - entry.sinceMs >= parkAfterMs) {
        const running = park(entry);
        parking.add(running);
        void running.finally(() => parking.delete(running));
      }
    }
  }, Math.max(250, Math.floor(options.claimMs / 3)));
  timer.unref();

  return {
    hold(claim, deliveryIds) {
      const entry: Held = { claim, ids: new Set(deliveryIds), sinceMs: clock.nowMs(), parking: false };
      held.add(entry);
      completion.whenEnded(deliveryIds, () => {
        if (held.delete(entry)) claim.ack();
      });
    },
    get holding() {
      return held.size;
    },
    async close() {
      clearInterval(timer);
      await Promise.all(parking);
    },
  };
}
