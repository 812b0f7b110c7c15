/**
 * The dispatcher of a cluster: the nodes share each bus's events through a shared consumer
 * of the log (`SharedLogConsumer`, a JetStream durable consumer), so each event is routed and
 * delivered by one node, and a node that dies has its unfinished events taken over.
 *
 * A node claims a batch, routes it and hands its deliveries to its delivery engine, records
 * them in its state file as the embedded dispatcher does, and acknowledges each event to the
 * cluster once every delivery it produced has ended (succeeded or dead-lettered). Until then
 * it keeps the claim alive. So an event whose node dies mid-way is claimed again by another
 * node, which delivers it again: at least once, across the cluster.
 *
 * The claims are held by the claim keeper (`claim-keeper.ts`), which also parks deliveries
 * still retrying after a while in the cluster, so that a target failing for hours does not
 * hold its events (and, at the cluster's limit of unacknowledged events, the bus) for hours.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors.js";
import type { DeliveryStore, DispatchedDelivery } from "../log/log-engine.js";
import type { ClaimedEvent, SharedLogConsumer } from "../log/shared-log-consumer.js";
import type { Clock, Logger } from "../types.js";
import { createBatchBuilder } from "./batch-builder.js";
import type { ClaimKeeper } from "./claim-keeper.js";
import type { DeliveryEngine } from "./delivery-engine.js";
import { DEFAULT_DISPATCH_BATCH_SIZE, DEFAULT_HAND_OFF_WINDOW_MS, type Dispatcher } from "./dispatcher.js";
import type { FormatOptions } from "./format-payload.js";
import type { Router } from "./router.js";

/** Claims each node keeps open per bus at once, by default. */
export const DEFAULT_CLAIMS_PER_BUS = 4;
/**
 * Events a node holds claimed while their deliveries run, at most, by default. Past it, the
 * node claims nothing more until some end, so that a slow target on one node does not pile up
 * events the other nodes could be delivering.
 */
export const DEFAULT_MAX_HELD_EVENTS = 2_000;
/** How often a node holding its most looks again. */
const HELD_RECHECK_MS = 20;
/** How long one claim waits for events before asking again. */
const CLAIM_WAIT_MS = 2_000;
/** How often the lowest unfinished offset of each bus is asked for (retention). */
const FLOOR_REFRESH_MS = 30_000;

export interface SharedDispatcherOptions {
  consumer: SharedLogConsumer;
  /** This node's delivery state, as the engine sees it (`completion.store`). */
  deliveries: DeliveryStore;
  /** Holds the claims of events whose deliveries have not all ended. */
  keeper: ClaimKeeper;
  router: Router;
  engine?: Pick<DeliveryEngine, "handOff">;
  /** The buses to work on at start; others join when the log reports appends to them. */
  listBuses(): string[];
  /** The log's append notices (this node's and the others'): a bus to work on. */
  onAppend(listener: (bus: string) => void): () => void;
  clock: Clock;
  logger: Logger;
  transformTimeoutMs: number;
  format?: FormatOptions;
  batchSize?: number;
  handOffWindowMs?: number;
  claimsPerBus?: number;
  /** Events this node holds claimed with deliveries not ended before it claims more. Default {@link DEFAULT_MAX_HELD_EVENTS}. */
  maxHeldEvents?: number;
  failureBackoffMs?: number;
}

/** The shared dispatcher: a {@link Dispatcher} plus what retention asks of it. */
export interface SharedDispatcher extends Dispatcher {
  /**
   * The lowest offset of `bus` that some node may still dispatch, as last heard from the
   * cluster (1 until heard): retention keeps it and what follows.
   */
  firstUnfinished(bus: string): number;
}

export function createSharedDispatcher(options: SharedDispatcherOptions): SharedDispatcher {
  const { consumer, deliveries, keeper, engine, logger } = options;
  const batchSize = options.batchSize ?? DEFAULT_DISPATCH_BATCH_SIZE;
  const handOffWindowMs = options.handOffWindowMs ?? DEFAULT_HAND_OFF_WINDOW_MS;
  const claimsPerBus = options.claimsPerBus ?? DEFAULT_CLAIMS_PER_BUS;
  const maxHeldEvents = options.maxHeldEvents ?? DEFAULT_MAX_HELD_EVENTS;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  const buildBatch = createBatchBuilder({ ...options, deliveries });
  const abort = new AbortController();
  const loops = new Map<string, Promise<void>[]>();
  const floors = new Map<string, number>();
  /** Batches being routed and handed over right now. */
  let active = 0;
  /** Counts claims that came back empty, so that `whenIdle` can wait for a quiet round. */
  let emptyClaims = 0;
  let closed = false;

  function start(bus: string): void {
    if (closed || loops.has(bus)) return;
    loops.set(
      bus,
      Array.from({ length: claimsPerBus }, () => work(bus)),
    );
  }

  async function work(bus: string): Promise<void> {
    while (!closed) {
      // Claim no more than this node can deliver soon: what it holds waits on its targets,
      // while another node could take it.
      while (keeper.holding >= maxHeldEvents && !closed) await sleep(HELD_RECHECK_MS);
      let claimed: ClaimedEvent[];
      try {
        claimed = await consumer.claim(bus, batchSize, CLAIM_WAIT_MS);
      } catch (error) {
        if (closed) return;
        logger.error("dispatch: claiming events failed; trying again", { bus, retryInMs: failureBackoffMs, error: errorMessage(error) });
        await sleep(failureBackoffMs, undefined, { signal: abort.signal }).catch(() => undefined);
        continue;
      }
      if (closed) return; // what it claimed goes back unacknowledged
      if (claimed.length === 0) {
        emptyClaims += 1;
        continue;
      }
      active += 1;
      try {
        await dispatch(bus, claimed);
      } catch (error) {
        // Not acknowledged: the events are handed out again once their claims run out.
        logger.error("dispatch: batch failed; its events will be claimed again", {
          bus,
          events: claimed.length,
          error: errorMessage(error),
        });
      } finally {
        active -= 1;
      }
    }
  }

  async function dispatch(bus: string, claimed: ClaimedEvent[]): Promise<void> {
    const events = claimed.map((c) => c.event);
    const built = await buildBatch(bus, events);
    const handOff = built.length > 0 && engine !== undefined ? engine.handOff(built, handOffWindowMs) : undefined;
    if (handOff !== undefined) await handOff.settled;
    const dispatched: DispatchedDelivery[] = handOff?.seal() ?? built.map((delivery) => ({ delivery }));
    let through = deliveries.checkpoint(bus);
    for (const event of events) through = Math.max(through, event.offset);
    deliveries.commitDispatched(bus, through, dispatched);

    const pendingByOffset = new Map<number, string[]>();
    for (const item of dispatched) {
      if (hasEnded(item)) continue;
      const ids = pendingByOffset.get(item.delivery.offset) ?? [];
      ids.push(item.delivery.id);
      pendingByOffset.set(item.delivery.offset, ids);
    }
    for (const c of claimed) {
      const ids = pendingByOffset.get(c.event.offset);
      if (ids === undefined) c.ack();
      else keeper.hold(c, ids);
    }
  }

  const refreshFloors = async () => {
    for (const bus of loops.keys()) {
      try {
        floors.set(bus, await consumer.firstUnfinished(bus));
      } catch (error) {
        logger.warn("dispatch: could not read how far the cluster got", { bus, error: errorMessage(error) });
      }
    }
  };
  const floorTimer = setInterval(() => void refreshFloors(), FLOOR_REFRESH_MS);
  floorTimer.unref();

  const unsubscribe = options.onAppend(start);
  try {
    for (const bus of options.listBuses()) start(bus);
  } catch (error) {
    logger.error("dispatch: could not list buses to work on", { error: errorMessage(error) });
  }

  return {
    wake: start,
    async whenIdle() {
      // Idle: nothing being dispatched, and every claim loop has since come back empty once.
      const target = emptyClaims + [...loops.values()].reduce((n, l) => n + l.length, 0);
      while (!closed && (active > 0 || emptyClaims < target)) await sleep(20);
    },
    firstUnfinished: (bus) => floors.get(bus) ?? 1,
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(floorTimer);
      abort.abort();
      consumer.stop();
      // What claims in progress took goes back unacknowledged.
      await Promise.all([...loops.values()].flat());
    },
  };
}

/** A delivery whose first go ended it: succeeded, or dead-lettered (nothing left to wait for). */
function hasEnded(item: DispatchedDelivery): boolean {
  if (item.deadReason !== undefined) return true;
  return item.first !== undefined && item.first.next.kind !== "retry";
}
