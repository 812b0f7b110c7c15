/**
 * From events to deliveries: routes each event of a batch through the rules and builds one
 * delivery per matched target (its request formatted or transformed). Both dispatchers use
 * it: the one following the log from a checkpoint, and the one sharing work with a cluster.
 */
import type { DeliveryStore, NewDelivery } from "../log/log-engine.js";
import type { Clock, Logger, StoredEvent } from "../types.js";
import { buildDelivery, type BuildDeliveryOptions } from "./build-request.js";
import { deliveryId } from "./delivery-id.js";
import { DEFAULT_FORMAT_OPTIONS, type FormatOptions } from "./format-payload.js";
import type { RoutedTarget, Router } from "./router.js";

export interface BatchBuilderOptions {
  router: Router;
  /** Where a delivery that cannot be built (its transform failed) goes: the dead letters. */
  deliveries: Pick<DeliveryStore, "deadLetter">;
  clock: Clock;
  logger: Logger;
  /** Budget of one transform evaluation (`transform.timeoutMs`). */
  transformTimeoutMs: number;
  /** Settings of the AWS envelope. Default {@link DEFAULT_FORMAT_OPTIONS}. */
  format?: FormatOptions;
}

/**
 * Routes a batch and builds its deliveries, in event order; those that cannot be built are
 * dead-lettered with the reason (the other deliveries of the event go on).
 */
export type BatchBuilder = (bus: string, events: readonly StoredEvent[]) => Promise<NewDelivery[]>;

export function createBatchBuilder(options: BatchBuilderOptions): BatchBuilder {
  const { router, deliveries, clock, logger } = options;

  /**
   * Dead-letters a delivery that could not be built. This happens before the batch's
   * commit: a crash in between re-dispatches the batch, and the derived id makes the second
   * dead letter a no-op rather than a duplicate.
   */
  const buildOptions: BuildDeliveryOptions = {
    transformTimeoutMs: options.transformTimeoutMs,
    format: options.format ?? DEFAULT_FORMAT_OPTIONS,
    // Structured mode sends the log's own JSON of the event: the store keeps a reference.
    markBodyIsEvent: true,
    deadLetter(delivery, reason) {
      deliveries.deadLetter(delivery, reason);
      logger.warn("dispatch: delivery dead-lettered before its first attempt", {
        bus: delivery.bus,
        offset: delivery.offset,
        rule: delivery.rule,
        targetId: delivery.targetId,
        reason,
      });
    },
  };

  /** The delivery of one event to one target, or undefined when it was dead-lettered instead. */
  function deliveryOf(
    bus: string,
    stored: StoredEvent,
    target: RoutedTarget,
    nowMs: number,
  ): NewDelivery | Promise<NewDelivery | undefined> | undefined {
    const base = {
      id: deliveryId(bus, stored.offset, stored.event.id, target.rule, target.targetId),
      bus,
      offset: stored.offset,
      eventId: stored.event.id,
      rule: target.rule,
      targetId: target.targetId,
      retry: target.retry,
      eventReceivedAtMs: stored.receivedAtMs,
      createdAtMs: nowMs,
    };
    return buildDelivery(base, stored, target, nowMs, buildOptions);
  }

  return async (bus, events) => {
    const nowMs = clock.nowMs();
    const built: Array<NewDelivery | Promise<NewDelivery | undefined> | undefined> = [];
    let async = false;
    for (const stored of events) {
      // The hot path: most events match nothing, and cost one route() call.
      const targets = router.route(bus, stored.event);
      for (const target of targets) {
        const item = deliveryOf(bus, stored, target, nowMs);
        if (item instanceof Promise) async = true;
        built.push(item);
      }
    }
    const settled = async ? await Promise.all(built) : built;
    const ready: NewDelivery[] = [];
    for (const d of settled) if (d !== undefined) ready.push(d as NewDelivery);
    return ready;
  };
}
