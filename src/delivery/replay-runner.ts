/**
 * The replay runner: the events of a time window, from an archive or from a bus's log, sent
 * again through a bus's rules (or one rule, or one target), in log order, marked as replays.
 *
 * Per batch it reads the next events of the window, routes each through the destination
 * bus's rules (keeping the destination's rule and target), builds each delivery's request
 * the way the dispatcher does (transform, then format), and records the deliveries with the
 * replay's progress in one transaction. Each delivery has:
 * - the order key `replay:<name>:<bus>/<rule>/<targetId>`, so that delivery sends one
 *   target's replayed events one at a time, in the order recorded (log order);
 * - an id of its own, derived from the replay's name and the id of the original delivery
 *   (`replayDeliveryId`): a receiver that deduplicates does not drop it as a repeat of the
 *   original, and a replay resumed after a crash repeats the same ids, which the store skips;
 * - the marks: the event gets the CloudEvents extension `replayname` (before routing and
 *   transforming, so patterns and transforms see it), the request the `relaybus-replay`
 *   header, and the AWS envelope `"replay-name"`.
 *
 * A replay never runs ahead of delivery by more than `maxPendingDeliveries` (it waits while
 * more of its deliveries are pending), so replaying millions of events does not fill the
 * delivery table. Cancelling stops it after the batch in progress; deliveries already
 * recorded still go out. Progress is in the state file: a restarted service resumes running
 * replays from their last offset.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { errorMessage, RelaybusError } from "../errors.js";
import type { ArchiveStore } from "../log/archive-store.js";
import type { DeliveryStore, LogEngine, NewDelivery } from "../log/log-engine.js";
import {
  replayOrderKey,
  type ReplayDestination,
  type ReplaySource,
  type ReplayStore,
  type StoredReplay,
} from "../log/replay-store.js";
import type { Clock, Logger, StoredEvent } from "../types.js";
import { buildDelivery } from "./build-request.js";
import { deliveryId, replayDeliveryId } from "./delivery-id.js";
import { DEFAULT_FORMAT_OPTIONS, type FormatOptions } from "./format-payload.js";
import type { RoutedTarget, Router } from "./router.js";

/** Events per batch (one read, one transaction) by default. */
export const DEFAULT_REPLAY_BATCH_SIZE = 500;
/** Deliveries of one replay that may be pending before it waits, by default. */
export const DEFAULT_REPLAY_MAX_PENDING = 10_000;

/** The CloudEvents extension attribute that marks a replayed event (lowercase alphanumerics, per the spec). */
export const REPLAY_EXTENSION = "replayname";

/** What a client asks to replay. */
export interface ReplayRequest {
  name: string;
  description?: string;
  source: ReplaySource;
  /** The window: events the log received from `fromMs` through `toMs`, ms since the epoch. */
  fromMs: number;
  toMs: number;
  destination: ReplayDestination;
}

/** Options of {@link createReplayRunner}. */
export interface ReplayRunnerOptions {
  log: LogEngine;
  archives: ArchiveStore;
  replays: ReplayStore;
  /** Where the deliveries go (`enqueue`, inside the replay store's transaction) and failed builds are dead-lettered. */
  deliveries: DeliveryStore;
  /** Routes an event of the destination bus to its targets (the rule registry). */
  router: Router;
  /** Tells delivery that deliveries are due (the delivery engine's `wake`). */
  wake(): void;
  clock: Clock;
  logger: Logger;
  /** Budget of one transform evaluation (`transform.timeoutMs`). */
  transformTimeoutMs: number;
  /** Settings of the AWS envelope. Default {@link DEFAULT_FORMAT_OPTIONS}. */
  format?: FormatOptions;
  /** Events per batch. Default {@link DEFAULT_REPLAY_BATCH_SIZE}. */
  batchSize?: number;
  /** Pending deliveries of one replay above which it waits. Default {@link DEFAULT_REPLAY_MAX_PENDING}. */
  maxPendingDeliveries?: number;
  /** How long a replay waits before looking again at its backlog or its archive. Default 50 ms. */
  waitMs?: number;
  /** Wait before retrying after a storage failure. Default 1,000 ms. */
  failureBackoffMs?: number;
}

/** A running replay runner. */
export interface ReplayRunner {
  /**
   * Fixes the window's offsets (its end: the log's end now, or the last offset received by
   * `toMs` if earlier), counts its events, stores the replay as `running` and starts it.
   * Throws `ArchiveNotFound`, `ReplayAlreadyExists`, `ServiceUnavailable`.
   */
  start(request: ReplayRequest): Promise<StoredReplay>;
  /**
   * Cancels a running replay: it stops after the batch in progress (deliveries already
   * recorded still go out). A replay that has ended is returned as it is. `ReplayNotFound`.
   */
  cancel(name: string): StoredReplay;
  /** Resolves once no replay is running in this process (completed, cancelled or failed). */
  whenIdle(): Promise<void>;
  /** Stops every replay where it is (they stay `running` and resume at the next start). */
  close(): Promise<void>;
}

interface Run {
  name: string;
  done: Promise<void>;
  /** Cancelled or closing: stop before the next batch. */
  stopped: boolean;
  /** The archive had not archived the whole window when the replay started: count again once it has. */
  recount: boolean;
  /** Ends the current wait early. */
  interrupt: (() => void) | undefined;
}

/** A batch read from the source: the window's events, how far it got, and whether that is the end. */
interface SourceBatch {
  events: StoredEvent[];
  throughOffset: number;
  completed: boolean;
  /** An archive that has not caught up yet: nothing to do until it has. */
  waiting?: boolean;
}

/** Creates the runner and resumes the replays left running by an earlier process. */
export function createReplayRunner(options: ReplayRunnerOptions): ReplayRunner {
  const { log, archives, replays, deliveries, router, clock, logger, transformTimeoutMs } = options;
  const batchSize = options.batchSize ?? DEFAULT_REPLAY_BATCH_SIZE;
  const maxPending = options.maxPendingDeliveries ?? DEFAULT_REPLAY_MAX_PENDING;
  const waitMs = options.waitMs ?? 50;
  const failureBackoffMs = options.failureBackoffMs ?? 1_000;
  const formatBase = options.format ?? DEFAULT_FORMAT_OPTIONS;
  const runs = new Map<string, Run>();
  let closed = false;

  function launch(name: string, recount: boolean): void {
    const run: Run = {
      name,
      done: Promise.resolve(),
      stopped: false,
      recount,
      interrupt: undefined,
    };
    runs.set(name, run);
    run.done = loop(run)
      .catch((error: unknown) => {
        logger.error("replay: stopped by an unexpected error", {
          replay: name,
          error: errorMessage(error),
        });
      })
      .finally(() => {
        if (runs.get(name) === run) runs.delete(name);
      });
  }

  function wait(run: Run, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        run.interrupt = undefined;
        resolve();
      }
      run.interrupt = done;
    });
  }

  async function loop(run: Run): Promise<void> {
    while (!closed && !run.stopped) {
      const replay = replays.get(run.name);
      if (replay === undefined || replay.state !== "running") return;
      try {
        if (replays.pendingDeliveries(run.name) >= maxPending) {
          await wait(run, waitMs);
          continue;
        }
        const batch = await readBatch(run, replay);
        if (batch === undefined) return; // failed
        if (batch.waiting === true) {
          await wait(run, waitMs);
          continue;
        }
        if (run.stopped) return;
        if (!(await handOver(replay, batch))) return;
        if (batch.completed) {
          logger.info("replay completed", {
            replay: run.name,
            replayed: replay.replayed + batch.events.length,
          });
          return;
        }
      } catch (error) {
        logger.error("replay: batch failed; retrying", {
          replay: run.name,
          retryInMs: failureBackoffMs,
          error: errorMessage(error),
        });
        await wait(run, failureBackoffMs);
        continue;
      }
      // Reads may resolve without leaving the microtask queue; let requests and timers run.
      await yieldToEventLoop();
    }
  }

  /** The next events of the window after the replay's last offset, or undefined once it failed. */
  async function readBatch(run: Run, replay: StoredReplay): Promise<SourceBatch | undefined> {
    const window = { fromMs: replay.fromMs, toMs: replay.toMs };
    if ("bus" in replay.source) {
      const read = await log.read(replay.bus, replay.lastOffset, batchSize);
      const inRange = read.filter((e) => e.offset <= replay.endOffset);
      const last = inRange[inRange.length - 1];
      const completed =
        read.length < batchSize ||
        inRange.length < read.length ||
        last === undefined ||
        last.offset >= replay.endOffset;
      return {
        // The log's receive times follow offsets; the filter keeps the window exact anyway.
        events: inRange.filter(
          (e) => e.receivedAtMs >= window.fromMs && e.receivedAtMs <= window.toMs,
        ),
        throughOffset: completed ? Math.max(replay.lastOffset, replay.endOffset) : last.offset,
        completed,
      };
    }
    const archive = archives.get(replay.source.archive);
    if (archive === undefined || archive.id !== replay.archiveId) {
      const error = `archive "${replay.source.archive}" was deleted`;
      replays.fail(run.name, error, clock.nowMs());
      logger.warn("replay failed", { replay: run.name, error });
      return undefined;
    }
    const bound = Math.min(replay.endOffset, archive.throughOffset);
    if (run.recount && bound >= replay.endOffset) {
      replays.setTotal(
        run.name,
        archives.countWindow(archive.id, { ...window, throughOffset: replay.endOffset }),
      );
      run.recount = false;
    }
    const events = archives.readWindow(
      archive.id,
      replay.bus,
      replay.lastOffset,
      { ...window, throughOffset: bound },
      batchSize,
    );
    if (events.length === batchSize) {
      return { events, throughOffset: events[events.length - 1]!.offset, completed: false };
    }
    const completed = bound >= replay.endOffset;
    if (!completed && events.length === 0)
      return { events, throughOffset: replay.lastOffset, completed, waiting: true };
    return { events, throughOffset: Math.max(replay.lastOffset, bound), completed };
  }

  /** Builds and commits one batch; false when the replay is no longer running. */
  async function handOver(replay: StoredReplay, batch: SourceBatch): Promise<boolean> {
    const nowMs = clock.nowMs();
    const { destination } = replay;
    const format: FormatOptions = { ...formatBase, replayName: replay.name };
    const built: Array<NewDelivery | Promise<NewDelivery | undefined> | undefined> = [];
    let async = false;
    for (const original of batch.events) {
      const stored = markAsReplay(original, replay.name);
      for (const target of router.route(destination.bus, stored.event)) {
        if (destination.rule !== undefined && target.rule !== destination.rule) continue;
        if (destination.targetId !== undefined && target.targetId !== destination.targetId)
          continue;
        const item = deliveryOf(replay, stored, target, nowMs, format);
        if (item instanceof Promise) async = true;
        built.push(item);
      }
    }
    const settled = async ? await Promise.all(built) : built;
    const ready: NewDelivery[] = [];
    for (const d of settled) if (d !== undefined) ready.push(d as NewDelivery);
    const committed = replays.commitBatch(
      replay.name,
      {
        throughOffset: batch.throughOffset,
        replayedEvents: batch.events.length,
        deliveries: ready.length,
        ...(batch.completed ? { completedAtMs: nowMs } : {}),
      },
      () => deliveries.enqueue(ready),
    );
    if (committed && ready.length > 0) options.wake();
    return committed;
  }

  /** One replayed delivery, or undefined when it was dead-lettered; synchronous unless the target transforms. */
  function deliveryOf(
    replay: StoredReplay,
    stored: StoredEvent,
    target: RoutedTarget,
    nowMs: number,
    format: FormatOptions,
  ): NewDelivery | Promise<NewDelivery | undefined> | undefined {
    const bus = replay.destination.bus;
    const base: Omit<NewDelivery, "request"> = {
      id: replayDeliveryId(
        replay.name,
        deliveryId(stored.bus, stored.offset, stored.event.id, target.rule, target.targetId),
      ),
      bus,
      offset: stored.offset,
      eventId: stored.event.id,
      rule: target.rule,
      targetId: target.targetId,
      retry: target.retry,
      // Age counts from the hand-over: a replay of last month's events must not be out of
      // its `maxAgeSeconds` before its first attempt.
      eventReceivedAtMs: nowMs,
      createdAtMs: nowMs,
      orderKey: replayOrderKey(replay.name, bus, target.rule, target.targetId),
    };
    return buildDelivery(base, stored, target, nowMs, {
      transformTimeoutMs,
      format,
      deadLetter(delivery, reason) {
        deliveries.deadLetter(delivery, reason);
        logger.warn("replay: delivery dead-lettered before its first attempt", {
          offset: delivery.offset,
          rule: delivery.rule,
          targetId: delivery.targetId,
          reason,
        });
      },
    });
  }

  async function start(request: ReplayRequest): Promise<StoredReplay> {
    if (closed) throw new RelaybusError("ServiceUnavailable", "the replay runner is closed");
    const { fromMs, toMs } = request;
    let bus: string;
    let archiveId: number | undefined;
    let archivedThrough = 0;
    if ("archive" in request.source) {
      const archive = archives.get(request.source.archive);
      if (archive === undefined) {
        throw new RelaybusError(
          "ArchiveNotFound",
          `source.archive: archive "${request.source.archive}" does not exist`,
          {
            details: { archive: request.source.archive },
          },
        );
      }
      bus = archive.bus;
      archiveId = archive.id;
      archivedThrough = archive.throughOffset;
    } else {
      bus = request.source.bus;
    }

    const head = await log.lastOffset(bus);
    const afterWindow =
      toMs >= Number.MAX_SAFE_INTEGER
        ? undefined
        : await log.firstOffsetReceivedFrom(bus, toMs + 1);
    const endOffset = afterWindow === undefined ? head : Math.min(head, afterWindow - 1);
    let lastOffset: number;
    let total: number;
    if (archiveId === undefined) {
      const first = await log.firstOffsetReceivedFrom(bus, fromMs);
      lastOffset = first === undefined || first > endOffset ? endOffset : first - 1;
      total = Math.max(0, endOffset - lastOffset);
    } else {
      const first = archives.firstOffsetFrom(archiveId, fromMs);
      lastOffset = Math.min(first === undefined ? archivedThrough : first - 1, endOffset);
      total = archives.countWindow(archiveId, { fromMs, toMs, throughOffset: endOffset });
    }
    const replay: StoredReplay = {
      name: request.name,
      ...(request.description === undefined ? {} : { description: request.description }),
      source: request.source,
      ...(archiveId === undefined ? {} : { archiveId }),
      bus,
      fromMs,
      toMs,
      endOffset,
      destination: request.destination,
      state: "running",
      total,
      replayed: 0,
      deliveries: 0,
      lastOffset,
      startedAtMs: clock.nowMs(),
    };
    replays.create(replay);
    logger.info("replay started", { replay: replay.name, bus, total, endOffset });
    launch(replay.name, archiveId !== undefined && archivedThrough < endOffset);
    return replay;
  }

  for (const replay of replays.listRunning()) {
    logger.info("replay resumed", {
      replay: replay.name,
      lastOffset: replay.lastOffset,
      replayed: replay.replayed,
    });
    launch(replay.name, false);
  }

  return {
    start,
    cancel(name) {
      const found = replays.cancel(name, clock.nowMs());
      if (found === undefined) {
        throw new RelaybusError("ReplayNotFound", `replay "${name}" does not exist`, {
          details: { replay: name },
        });
      }
      const run = runs.get(name);
      if (run !== undefined && found.state === "cancelled") {
        run.stopped = true;
        run.interrupt?.();
        logger.info("replay cancelled", { replay: name, replayed: found.replayed });
      }
      return found;
    },
    async whenIdle() {
      while (runs.size > 0) await Promise.all([...runs.values()].map((r) => r.done));
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const run of runs.values()) run.interrupt?.();
      await Promise.all([...runs.values()].map((r) => r.done));
    },
  };
}

/**
 * The event as a replay sends it: with the `replayname` extension (overriding one a
 * producer may have set), and its JSON (the structured form) rebuilt to match.
 */
export function markAsReplay(stored: StoredEvent, replayName: string): StoredEvent {
  const event = { ...stored.event, [REPLAY_EXTENSION]: replayName };
  return { ...stored, event, json: JSON.stringify(event) };
}
