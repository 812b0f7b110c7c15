/**
 * Dispatch and delivery when several nodes share the log (the JetStream engine): the shared
 * dispatcher claims events, the claim keeper holds each claim until the event's deliveries
 * ended (parking long retries in the cluster), and the parked delivery runner takes parked
 * deliveries back when due. This wires the three over one delivery store and engine.
 */
import type { DeliveryStore } from "../log/log-engine.js";
import type { ParkedDeliveries } from "../log/log-engine.js";
import type { SharedLogConsumer } from "../log/shared-log-consumer.js";
import type { Clock, Logger } from "../types.js";
import { createClaimKeeper } from "./claim-keeper.js";
import type { DeliveryCompletion } from "./delivery-completion.js";
import type { DeliveryEngine } from "./delivery-engine.js";
import { startParkedDeliveryRunner } from "./parked-delivery-runner.js";
import type { Router } from "./router.js";
import { createSharedDispatcher, type SharedDispatcher } from "./shared-dispatcher.js";

export interface ClusterDispatchOptions {
  consumer: SharedLogConsumer;
  parked: ParkedDeliveries;
  /** The node's delivery store, wrapped by `completion` (the engine records through `completion.store`). */
  completion: DeliveryCompletion;
  engine: Pick<DeliveryEngine, "handOff" | "wake" | "release">;
  router: Router;
  listBuses(): string[];
  onAppend(listener: (bus: string) => void): () => void;
  clock: Clock;
  logger: Logger;
  transformTimeoutMs: number;
  /** After this long, deliveries still retrying are parked in the cluster. Default 10 minutes. */
  parkAfterMs?: number;
}

/** The dispatcher of a cluster node; its `close` also stops taking parked deliveries. */
export function startClusterDispatch(options: ClusterDispatchOptions): SharedDispatcher {
  const deliveries: DeliveryStore = options.completion.store;
  const keeper = createClaimKeeper({
    deliveries,
    completion: options.completion,
    parked: options.parked,
    engine: options.engine,
    claimMs: Math.min(options.consumer.claimMs, options.parked.claimMs),
    clock: options.clock,
    logger: options.logger,
    ...(options.parkAfterMs === undefined ? {} : { parkAfterMs: options.parkAfterMs }),
  });
  const dispatcher = createSharedDispatcher({ ...options, deliveries, keeper });
  const parkedRunner = startParkedDeliveryRunner({ ...options, deliveries, keeper });
  return {
    ...dispatcher,
    async close() {
      await Promise.all([dispatcher.close(), parkedRunner.close()]);
      await keeper.close();
    },
  };
}
