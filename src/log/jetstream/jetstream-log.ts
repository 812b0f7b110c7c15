/**
 * The event log on NATS JetStream: one stream per bus, offsets are the stream's sequence
 * numbers, an ack is JetStream's PubAck (the event is stored on a quorum of the stream's
 * replicas). See `jetstream-names.ts` for the streams and subjects.
 *
 * How it differs from the SQLite log, and why:
 * - Publishing is deduplicated on the CloudEvent id (`Nats-Msg-Id`) within the stream's
 *   duplicate window: an id appended again to a bus within it is stored once, and the append
 *   answers with the event as first stored. That makes a producer's retry after a lost answer
 *   safe, which matters here because:
 * - There is no transaction across messages. An append whose publishes partly fail rejects
 *   (`ServiceUnavailable`) with part of it stored; publishing the same events again stores
 *   only the missing ones (the ids dedupe).
 * - Group commit is JetStream's own: the publishes of concurrent calls are pipelined on one
 *   connection, and each call waits for its own acks.
 * - `receivedAtMs` is the appending node's clock (a header), as the SQLite log stamps it;
 *   with several nodes, receive times follow offsets only as closely as their clocks agree.
 *
 * Reads ask the stream's leader for each message (`STREAM.MSG.GET`), pipelined, so a read
 * right after an append sees it (a direct get may be answered by a lagging replica).
 */
import { randomUUID } from "node:crypto";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  headers as natsHeaders,
  nanos,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type PubAck,
  type StoredMsg,
  type Subscription,
} from "nats";
import { RelaybusError } from "../../errors.js";
import type { Clock, EventToAppend, Logger, StoredEvent } from "../../types.js";
import type { LogEngine, LogStats } from "../log-engine.js";
import { tallyLogEvents, type PublishedTally } from "../usage-store.js";
import { isNatsNotFound, retryWhile } from "./nats-errors.js";
import { createJetStreamSharedConsumer } from "./jetstream-shared-consumer.js";
import { RECEIVED_AT_HEADER, storedEventOf } from "./jetstream-event.js";
import type { JetStreamNames } from "./jetstream-names.js";

/** The header naming the node that sent an appended note (to ignore one's own). */
const NODE_HEADER = "Relaybus-Node";
/** How long a publish is tried again while no server answers for its stream (503). */
const NO_RESPONDERS_RETRY_MS = 5_000;
const NO_RESPONDERS_BACKOFF_MS = 100;
/** Messages one read asks for at once, when it asks for each. */
const READ_PIPELINE = 256;
/** Reads of more events than this stream them through an ordered consumer. */
const READ_ONE_BY_ONE_MAX = 16;
/** How long a streamed read waits for a message that was deleted meanwhile. */
const STREAM_READ_WAIT_MS = 2_000;
/** A streamed read not done by then gives way to reading message by message. */
const STREAM_READ_TIMEOUT_MS = 5_000;
/** A streamed read's consumer is removed by the server after this long unused (should the read's own delete fail). */
const STREAM_READ_IDLE_MS = 30_000;
/** How long one publish waits for its PubAck. */
const PUBLISH_TIMEOUT_MS = 10_000;

export interface JetStreamLogOptions {
  connection: NatsConnection;
  names: JetStreamNames;
  /** Copies of each bus's stream: 1, 3 or 5. */
  replicas: number;
  /** An id appended again to its bus within this window is stored once. */
  duplicateWindowSeconds: number;
  /** How long a claim of shared work lasts without word from its node. */
  claimSeconds: number;
  /** Whether this node leads the cluster (it repairs stuck consumers); absent: never. */
  isLeader?(): boolean;
  clock: Clock;
  logger: Logger;
}

/** The JetStream log: the {@link LogEngine} plus what tests and tools need. */
export interface JetStreamLog extends LogEngine {
  /** Deletes every log stream under this prefix (tests, `relaybus dev`). */
  destroy(): Promise<void>;
  /**
   * The publish meter's tally of up to `limit` events after `afterOffset`: read without the
   * events' bodies (sizes and receive times are in the headers).
   */
  tallyPublished(bus: string, afterOffset: number, limit: number): Promise<PublishedTally>;
}

export async function createJetStreamLog(options: JetStreamLogOptions): Promise<JetStreamLog> {
  const { connection, names, clock, logger } = options;
  const js: JetStreamClient = connection.jetstream({ timeout: PUBLISH_TIMEOUT_MS });
  const jsm: JetStreamManager = await connection.jetstreamManager({ timeout: PUBLISH_TIMEOUT_MS });
  const nodeId = randomUUID();
  const listeners = new Set<(bus: string) => void>();
  const stats: LogStats = { commits: 0, committedEvents: 0, failedCommits: 0 };
  /** Buses whose stream is known to exist (or is being made). */
  const ensured = new Map<string, Promise<void>>();
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;

  const notify = (bus: string) => {
    for (const listener of listeners) {
      try {
        listener(bus);
      } catch (error) {
        logger.error("log append listener failed", { error: String(error) });
      }
    }
  };

  // Appends made through other nodes: each sends a bodiless note per bus it touched.
  const notes: Subscription = connection.subscribe(names.appendedWildcard, {
    callback: (error, message) => {
      if (error !== null || message.headers?.get(NODE_HEADER) === nodeId) return;
      const bus = names.busOfAppendedSubject(message.subject);
      if (bus !== undefined) notify(bus);
    },
  });

  const ensureStream = (bus: string): Promise<void> => {
    let ready = ensured.get(bus);
    if (ready === undefined) {
      ready = createStream(bus).catch((error: unknown) => {
        ensured.delete(bus);
        throw error;
      });
      ensured.set(bus, ready);
    }
    return ready;
  };

  const createStream = async (bus: string): Promise<void> => {
    const name = names.logStream(bus);
    try {
      await jsm.streams.info(name);
      return;
    } catch (error) {
      if (!isNatsNotFound(error)) throw error;
    }
    try {
      await jsm.streams.add({
        name,
        subjects: [names.logSubjects(bus)],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        num_replicas: options.replicas,
        duplicate_window: nanos(options.duplicateWindowSeconds * 1000),
        description: `Relaybus event log of bus ${bus}`,
      });
    } catch (error) {
      // Another node made it meanwhile: fine, as long as it is there now.
      await jsm.streams.info(name).catch(() => {
        throw error;
      });
    }
  };

  const toStored = (bus: string, message: StoredMsg): StoredEvent =>
    storedEventOf(bus, message.seq, message.data, message.header, message.time.getTime());

  /** The message at `seq` of the bus's stream, undefined when deleted or never stored. */
  const getAt = async (bus: string, seq: number): Promise<StoredEvent | undefined> => {
    try {
      return toStored(bus, await jsm.streams.getMessage(names.logStream(bus), { seq }));
    } catch (error) {
      if (isNatsNotFound(error)) return undefined;
      throw unavailable(`reading offset ${seq} of bus ${bus}`, error);
    }
  };

  /** first and last sequence and the message count of a bus's stream; zeros when it has none. */
  const streamState = async (bus: string): Promise<{ first: number; last: number; messages: number }> => {
    try {
      const { state } = await jsm.streams.info(names.logStream(bus));
      return { first: state.first_seq, last: state.last_seq, messages: state.messages };
    } catch (error) {
      if (isNatsNotFound(error)) return { first: 0, last: 0, messages: 0 };
      throw unavailable(`reading the state of bus ${bus}`, error);
    }
  };

  /**
   * The events of offsets `from` to `to`. A few are asked for one by one (pipelined); more
   * come through an ordered consumer starting at `from`, which streams them (measured here:
   * ~99,000 events/s in pages of 1,000 against ~17,700/s asking for each).
   */
  const readRange = async (bus: string, from: number, to: number): Promise<StoredEvent[]> => {
    if (to - from + 1 > READ_ONE_BY_ONE_MAX) {
      const events: StoredEvent[] = [];
      const streamed = await streamRange(bus, from, to, false, (message) => {
        events.push(storedEventOf(bus, message.seq, message.data, message.headers, streamTimeOf(message)));
      });
      if (streamed) return events;
    }
    const events: StoredEvent[] = [];
    for (let start = from; start <= to; start += READ_PIPELINE) {
      const end = Math.min(to, start + READ_PIPELINE - 1);
      const page = await Promise.all(Array.from({ length: end - start + 1 }, (_, i) => getAt(bus, start + i)));
      for (const event of page) if (event !== undefined) events.push(event);
    }
    return events;
  };

  /**
   * Hands the messages of offsets `from` to `to` to `each`, in order, through an ephemeral
   * pull consumer starting at `from` (`headersOnly`: without their bodies); offsets deleted
   * meanwhile are skipped. Returns false, having handed nothing, when the cluster did not
   * serve it in time (a server just died): the caller then asks for each message instead.
   * (nats.js's ordered consumer was tried first: its fetch could hang for good after a
   * server of the cluster died.)
   */
  const streamRange = async (
    bus: string,
    from: number,
    to: number,
    headersOnly: boolean,
    each: (message: JsMsg) => void,
  ): Promise<boolean> => {
    const stream = names.logStream(bus);
    let name: string | undefined;
    const received: JsMsg[] = [];
    let fetched: { close(): Promise<void | Error> } | undefined;
    const read = async () => {
      const info = await jsm.consumers.add(stream, {
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: from,
        headers_only: headersOnly,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(STREAM_READ_IDLE_MS),
      });
      name = info.name;
      const consumer = await js.consumers.get(stream, name);
      // Asks for exactly the range: the fetch ends as soon as it has them.
      const messages = await consumer.fetch({ max_messages: to - from + 1, expires: STREAM_READ_WAIT_MS });
      fetched = messages;
      for await (const message of messages) {
        if (message.seq > to) break;
        received.push(message);
        if (message.seq === to) break;
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), STREAM_READ_TIMEOUT_MS);
    });
    try {
      const outcome = await Promise.race([read().then(() => "read" as const), timedOut]);
      if (outcome === "late") {
        void fetched?.close();
        return false;
      }
    } catch (error) {
      if (isNatsNotFound(error)) return true;
      logger.warn("log: a streamed read failed; reading message by message", { bus, error: String(error) });
      return false;
    } finally {
      clearTimeout(timer);
      if (name !== undefined) void jsm.consumers.delete(stream, name).catch(() => undefined);
    }
    for (const message of received) each(message);
    return true;
  };

  /**
   * Publishes one event. "No responders" (503) means no server takes the subject yet: a
   * stream just made whose leader the cluster is still electing, or one moving after a server
   * died. The publish is tried again for a moment; the id makes a repeat harmless.
   */
  const publishOne = async (item: EventToAppend, receivedAtMs: number): Promise<PubAck> => {
    const h = natsHeaders();
    h.set(RECEIVED_AT_HEADER, String(receivedAtMs));
    const subject = names.eventSubject(item.bus, item.event.id);
    const data = Buffer.from(item.json, "utf8");
    return retryWhile(
      () => js.publish(subject, data, { msgID: item.event.id, headers: h }),
      (error) => (error as { code?: unknown }).code === "503" && !closed,
      NO_RESPONDERS_RETRY_MS,
      NO_RESPONDERS_BACKOFF_MS,
    );
  };

  /** Publishes the events; with them, the buses that got events not stored before (not duplicates). */
  const appendNow = async (events: readonly EventToAppend[]): Promise<{ stored: StoredEvent[]; added: Map<string, number> }> => {
    const buses = [...new Set(events.map((e) => e.bus))];
    await Promise.all(buses.map(ensureStream));
    const receivedAtMs = clock.nowMs();
    const acks = await Promise.all(events.map((item) => publishOne(item, receivedAtMs)));
    const stored: StoredEvent[] = [];
    const added = new Map<string, number>();
    for (let i = 0; i < events.length; i++) {
      const item = events[i]!;
      const ack = acks[i]!;
      if (!ack.duplicate) {
        stored.push({ ...item, offset: ack.seq, receivedAtMs });
        added.set(item.bus, (added.get(item.bus) ?? 0) + 1);
        continue;
      }
      // Stored before (a retry, or the same id twice): answer with the event as first stored.
      const first = await getAt(item.bus, ack.seq);
      stored.push(first ?? { ...item, offset: ack.seq, receivedAtMs });
    }
    return { stored, added };
  };

  const log: JetStreamLog = {
    async append(events) {
      if (closed) throw closedError();
      if (events.length === 0) return [];
      const work = appendNow(events);
      inFlight.add(work);
      try {
        const { stored, added } = await work;
        // Only what was stored now counts: events that were there already (duplicates) do not.
        if (added.size === 0) return stored;
        stats.commits += 1;
        for (const count of added.values()) stats.committedEvents += count;
        const touched = [...added.keys()];
        for (const bus of touched) {
          const h = natsHeaders();
          h.set(NODE_HEADER, nodeId);
          connection.publish(names.appendedSubject(bus), undefined, { headers: h });
        }
        for (const bus of touched) notify(bus);
        return stored;
      } catch (error) {
        stats.failedCommits += 1;
        throw error instanceof RelaybusError ? error : unavailable("appending events", error);
      } finally {
        inFlight.delete(work);
      }
    },

    async read(bus, afterOffset, limit) {
      if (limit <= 0) return [];
      const { first, last } = await streamState(bus);
      const from = Math.max(afterOffset + 1, first);
      const to = Math.min(last, from + limit - 1);
      if (last === 0 || from > to) return [];
      return readRange(bus, from, to);
    },

    async readLast(bus, limit) {
      if (limit <= 0) return [];
      const { first, last } = await streamState(bus);
      if (last === 0) return [];
      return readRange(bus, Math.max(first, last - limit + 1), last);
    },

    async lastOffset(bus) {
      return (await streamState(bus)).last;
    },

    async count(bus) {
      return (await streamState(bus)).messages;
    },

    async findById(bus, id) {
      try {
        return toStored(bus, await jsm.streams.getMessage(names.logStream(bus), { last_by_subj: names.eventSubject(bus, id) }));
      } catch (error) {
        if (isNatsNotFound(error)) return undefined;
        throw unavailable(`finding event ${id} of bus ${bus}`, error);
      }
    },

    async firstOffsetReceivedFrom(bus, timeMs) {
      const { first, last } = await streamState(bus);
      if (last === 0 || first > last) return undefined;
      return firstReceivedFrom(bus, first, last, timeMs);
    },

    onAppend(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async pruneOlderThan(cutoffMs, keepFrom) {
      let deleted = 0;
      for (const bus of await logBuses()) {
        const { first, last } = await streamState(bus);
        if (last === 0 || first > last) continue;
        const firstKept = (await firstReceivedFrom(bus, first, last, cutoffMs)) ?? last + 1;
        const upTo = Math.min(firstKept, keepFrom(bus));
        if (upTo <= first) continue;
        const response = await jsm.streams.purge(names.logStream(bus), { seq: upTo });
        deleted += response.purged;
      }
      return deleted;
    },

    sharedConsumer: (name) => createJetStreamSharedConsumer({
        connection,
        jsm,
        names,
        name,
        logger,
        ensureStream,
        claimMs: options.claimSeconds * 1_000,
        ...(options.isLeader === undefined ? {} : { isLeader: options.isLeader }),
      }),

    stats: () => ({ ...stats }),

    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...inFlight]);
      notes.unsubscribe();
    },

    async tallyPublished(bus, afterOffset, limit) {
      const { first, last } = await streamState(bus);
      const from = Math.max(afterOffset + 1, first);
      const to = Math.min(last, from + limit - 1);
      const counted: Array<{ offset: number; receivedAtMs: number; units: number }> = [];
      if (last > 0 && from <= to) {
        const streamed = await streamRange(bus, from, to, true, (message) => {
          const sizeBytes = Number(message.headers?.get("Nats-Msg-Size") ?? 0);
          const stamped = Number(message.headers?.get(RECEIVED_AT_HEADER));
          counted.push({
            offset: message.seq,
            receivedAtMs: Number.isFinite(stamped) && stamped > 0 ? stamped : streamTimeOf(message),
            units: Math.max(1, Math.ceil(sizeBytes / 65_536)),
          });
        });
        if (!streamed) return tallyLogEvents(afterOffset, await readRange(bus, from, to));
      }
      return tallyLogEvents(afterOffset, counted);
    },

    async destroy() {
      for (const bus of await logBuses()) {
        await jsm.streams.delete(names.logStream(bus)).catch((error: unknown) => {
          if (!isNatsNotFound(error)) throw error;
        });
      }
      ensured.clear();
    },
  };

  /** Binary search over offsets for the first event received at or after `timeMs`. */
  async function firstReceivedFrom(bus: string, first: number, last: number, timeMs: number): Promise<number | undefined> {
    let low = first;
    let high = last;
    let found: number | undefined;
    while (low <= high) {
      const middle = Math.floor((low + high) / 2);
      const event = await nearestFrom(bus, middle, high);
      if (event === undefined) {
        high = middle - 1;
        continue;
      }
      if (event.receivedAtMs >= timeMs) {
        found = event.offset;
        high = middle - 1;
      } else {
        low = event.offset + 1;
      }
    }
    return found;
  }

  /** The first event at or after `from` (up to `to`): skips offsets deleted meanwhile. */
  async function nearestFrom(bus: string, from: number, to: number): Promise<StoredEvent | undefined> {
    for (let seq = from; seq <= to; seq++) {
      const event = await getAt(bus, seq);
      if (event !== undefined) return event;
    }
    return undefined;
  }

  /** The buses that have a log stream under this prefix. */
  async function logBuses(): Promise<string[]> {
    const buses: string[] = [];
    for await (const name of jsm.streams.names()) {
      const bus = names.busOfLogStream(name);
      if (bus !== undefined) buses.push(bus);
    }
    return buses;
  }

  return log;
}

/** When the stream stored a message, ms since the epoch. */
function streamTimeOf(message: JsMsg): number {
  return Math.floor(message.info.timestampNanos / 1e6);
}

function closedError(): RelaybusError {
  return new RelaybusError("ServiceUnavailable", "the log is closed");
}

function unavailable(what: string, cause: unknown): RelaybusError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new RelaybusError("ServiceUnavailable", `JetStream failed ${what}: ${reason}`, { cause });
}
