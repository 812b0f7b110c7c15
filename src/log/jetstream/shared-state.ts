/**
 * State every node of a cluster shares (buses, API rules, connections: `shared-stores.ts`;
 * dead letters, signing secrets, target states: `shared-tables.ts`), kept in a JetStream
 * key-value bucket, `<PREFIX>_STATE`, and mirrored into each node's state file.
 *
 * - Reads stay local and synchronous: the stores above read their own SQLite tables, as on
 *   one machine.
 * - A write made on this node goes to its table and to the outbox (`sqlite-outbox.ts`) in one
 *   transaction; a sender puts the outbox's changes into the bucket in order.
 * - A watch on the bucket applies every change, this node's own included, to the local
 *   tables in the bucket's order, so that every node ends with the bucket's last value of
 *   each key (last writer wins). Other nodes see a change within milliseconds (the test asks
 *   for under a second).
 *
 * At start the node first sends what its outbox still holds, then takes the bucket's
 * current values; entities it has locally that the bucket never held (state from before the
 * node joined a cluster) are sent to the bucket.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { KV, KvEntry, NatsConnection, QueuedIterator } from "nats";
import { errorMessage } from "../../errors.js";
import type { JsonValue, Logger } from "../../types.js";
import type { SqliteOutbox } from "../sqlite/sqlite-outbox.js";
import { isNatsPayloadTooLarge } from "./nats-errors.js";

/** How long the sender waits before trying again after the bucket refused a change. */
const SEND_RETRY_MS = 500;
/** How a deletion is written where a change's JSON text goes. */
const DELETED = "\u0000deleted";
/** How long closing waits for the last changes to reach the cluster. */
const CLOSE_SEND_MS = 2_000;
/** Changes the sender takes from the outbox at once. */
const SEND_BATCH = 100;

/**
 * Values the bucket keeps per key. A watch delivers a key's values in order but skips one the
 * bucket dropped before the watch came to it: with one value per key, a pause written through
 * a follower and the leader's progress of the same stream written a moment later left the
 * leader without the pause (a CI run failed so). Keys written once (most) cost nothing more;
 * a stream's runtime, written every 2 s at most, keeps its last 8.
 */
const VALUES_KEPT_PER_KEY = 8;

async function keepValuesPerKey(connection: NatsConnection, stream: string): Promise<void> {
  const jsm = await connection.jetstreamManager();
  const { config } = await jsm.streams.info(stream);
  if (config.max_msgs_per_subject < VALUES_KEPT_PER_KEY) {
    await jsm.streams.update(stream, { ...config, max_msgs_per_subject: VALUES_KEPT_PER_KEY });
  }
}

/** How one kind of entity is mirrored: its keys' prefix and how to apply a change locally. */
export interface SharedKind {
  /** Keys of this kind start with `<prefix>.`: `bus`, `rule`, `connection`. */
  prefix: string;
  /** Applies a change made anywhere to the local table (never to the outbox). */
  apply(key: string, value: JsonValue | null): void;
  /**
   * Every entity of this kind the local table holds, as key and value (for the start).
   * `known` tells the keys the bucket holds already: a kind may leave those out, so that a
   * large table (dead letters) reads only its keys at each start, not every row.
   */
  localEntries(known: (key: string) => boolean): Array<{ key: string; value: JsonValue }>;
  /** Before the node stops sharing: record what is held back (a throttled row's last change). */
  beforeClose?(): void;
  /**
   * Whether another node's change is applied even while this node's own change of the same
   * key is on its way (sent, or still in the outbox), for a kind whose `apply` merges: a
   * pause made through another node must reach the leader though the leader's progress of
   * the same stream may be on its way at that moment.
   */
  takesOthersChangesOverOwn?(): boolean;
}

export interface SharedStateOptions {
  connection: NatsConnection;
  /** The bucket's name: `<PREFIX>_STATE`. */
  bucket: string;
  replicas: number;
  outbox: SqliteOutbox;
  kinds: readonly SharedKind[];
  logger: Logger;
  /** Told after changes were applied, with the kinds they touched. */
  onApplied(prefixes: ReadonlySet<string>): void;
}

export interface SharedState {
  /** Wakes the sender: call after recording a change in the outbox. */
  changed(): void;
  close(): Promise<void>;
}

/** Opens the bucket, sends the outbox, takes the bucket's values, and keeps watching. */
export async function startSharedState(options: SharedStateOptions): Promise<SharedState> {
  const { connection, outbox, logger } = options;
  const kv: KV = await connection.jetstream().views.kv(options.bucket, { history: VALUES_KEPT_PER_KEY, replicas: options.replicas });
  await keepValuesPerKey(connection, `KV_${options.bucket}`); // a bucket made when it kept one
  const kindOf = (key: string) => options.kinds.find((k) => key.startsWith(`${k.prefix}.`));
  let closed = false;
  let sending: Promise<void> | undefined;
  /** Per key, the changes this node sent whose echo the watch has not brought back yet, oldest first. */
  const sentAwaitingEcho = new Map<string, SentChange[]>();
  let again = false;

  /**
   * A value larger than the server takes (a dead letter of a large, quote-heavy payload) can
   * never be sent, and every change behind it would wait for ever: it stays on this node.
   */
  const putUnlessTooLarge = async (key: string, value: string): Promise<number | undefined> => {
    try {
      return await kv.put(key, value);
    } catch (error) {
      if (!isNatsPayloadTooLarge(error)) throw error;
      logger.error("shared state: a change is larger than the cluster takes (max_payload); it stays on this node", {
        key,
        bytes: Buffer.byteLength(value),
      });
      return undefined;
    }
  };

  /** Stops waiting for the echo of a change the bucket did not take. */
  const forgetSent = (key: string, sent: SentChange): void => {
    const expected = sentAwaitingEcho.get(key);
    const at = expected?.indexOf(sent) ?? -1;
    if (at < 0) return;
    expected!.splice(at, 1);
    if (expected!.length === 0) sentAwaitingEcho.delete(key);
  };

  /** Puts the outbox's changes into the bucket, oldest first; stops at the first refusal. */
  const send = async (): Promise<void> => {
    while (!closed) {
      again = false;
      const changes = outbox.oldest(SEND_BATCH);
      if (changes.length === 0) {
        if (!again) return;
        continue;
      }
      for (const change of changes) {
        const text = change.value === null ? DELETED : JSON.stringify(change.value);
        // Expected back from the watch: recorded before sending, as the echo may come first.
        const expected = sentAwaitingEcho.get(change.key) ?? [];
        const sent: SentChange = { text };
        expected.push(sent);
        sentAwaitingEcho.set(change.key, expected);
        try {
          if (change.value === null) await kv.delete(change.key);
          else sent.revision = await putUnlessTooLarge(change.key, text);
          // Too large: the bucket never holds it, so no echo comes.
          if (change.value !== null && sent.revision === undefined) forgetSent(change.key, sent);
        } catch (error) {
          forgetSent(change.key, sent);
          throw error;
        }
        outbox.remove(change.seq);
      }
    }
  };
  const changed = () => {
    again = true;
    sending ??= (async () => {
      try {
        for (;;) {
          try {
            await send();
            return;
          } catch (error) {
            if (closed) return;
            logger.warn("shared state: the cluster did not take a change; trying again", { error: errorMessage(error) });
            await sleep(SEND_RETRY_MS);
          }
        }
      } finally {
        sending = undefined;
      }
    })();
  };

  await send();

  // The bucket's current values first, then every change. The watch tells how many values
  // follow each one (`delta`): the first with none after it ends the current values.
  const seen = new Set<string>();
  let inInitialLoad = (await kv.status()).values > 0;
  let initialized!: () => void;
  const ready = new Promise<void>((resolve) => (initialized = resolve));
  if (!inInitialLoad) initialized();
  const watch: QueuedIterator<KvEntry> = await kv.watch({ key: ">" });
  let touched = new Set<string>();
  const flushTouched = () => {
    if (touched.size === 0) return;
    const prefixes = touched;
    touched = new Set();
    try {
      options.onApplied(prefixes);
    } catch (error) {
      logger.error("shared state: a listener failed", { error: errorMessage(error) });
    }
  };
  /**
   * Whether a change from the bucket is one this node's table must not take: its own change
   * coming back, or one that its own later change (sent or still in the outbox) supersedes.
   * Taking those would briefly undo the node's own writes (a rule it just created gone
   * again), since the bucket hands changes back in its order, behind the local writes.
   */
  const supersededHere = (kind: SharedKind, key: string, text: string, revision: number): boolean => {
    const expected = sentAwaitingEcho.get(key);
    if (expected !== undefined) {
      const own = takeEcho(expected, text, revision);
      if (expected.length === 0) sentAwaitingEcho.delete(key);
      if (own) return true;
    }
    if (kind.takesOthersChangesOverOwn?.() === true) return false;
    return sentAwaitingEcho.has(key) || outbox.holds(key);
  };
  const watching = (async () => {
    for await (const entry of watch) {
      const kind = kindOf(entry.key);
      if (inInitialLoad) seen.add(entry.key);
      const text = entry.operation === "PUT" ? entry.string() : DELETED;
      if (kind !== undefined && !supersededHere(kind, entry.key, text, entry.revision)) {
        try {
          kind.apply(entry.key, text === DELETED ? null : (JSON.parse(text) as JsonValue));
          touched.add(kind.prefix);
        } catch (error) {
          logger.error("shared state: a change from the cluster could not be applied", {
            key: entry.key,
            error: errorMessage(error),
          });
        }
      }
      if (entry.delta === 0 || entry.delta === undefined) {
        if (inInitialLoad) {
          inInitialLoad = false;
          initialized();
        }
        flushTouched();
      }
    }
  })();
  await ready;

  // Entities this node had before it shared its state (the bucket never held them).
  for (const kind of options.kinds) {
    for (const { key, value } of kind.localEntries((k) => seen.has(k))) {
      if (!seen.has(key)) outbox.add(key, value);
    }
  }
  changed();

  return {
    changed,
    async close() {
      // What is still held back goes out first, as far as the cluster takes it in a moment.
      for (const kind of options.kinds) kind.beforeClose?.();
      // The bound's timer is cleared once the changes are out: left running, it would hold the
      // process (and fail a test's open-handle check) for up to CLOSE_SEND_MS after close.
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([
        sending ?? send().catch(() => undefined),
        new Promise<void>((resolve) => (bound = setTimeout(resolve, CLOSE_SEND_MS))),
      ]).finally(() => clearTimeout(bound));
      closed = true;
      watch.stop();
      await watching.catch(() => undefined);
      await sending;
    },
  };
}

/** A change this node sent: its text, and its revision in the bucket once the bucket took it. */
interface SentChange {
  text: string;
  /** Unknown while the put is on its way, and for a deletion (the client does not tell it). */
  revision?: number;
}

/**
 * Whether the bucket's entry (`text` at `revision`) is one of this node's own changes in
 * `sent` coming back; takes it, and the changes before it, out of `sent`. A watch that is
 * behind skips a value the bucket dropped before the watch read it (the bucket keeps the last
 * {@link VALUES_KEPT_PER_KEY} of a key): an own change whose echo was skipped so is dropped
 * once an entry after it arrives (by its revision, or behind a later own change), else it
 * would hold the key's changes back for ever.
 */
export function takeEcho(sent: SentChange[], text: string, revision: number): boolean {
  while (sent.length > 0 && sent[0]!.revision !== undefined && sent[0]!.revision < revision) sent.shift();
  const at = sent.findIndex((change) => (change.revision === undefined ? change.text === text : change.revision === revision));
  if (at < 0) return false;
  sent.splice(0, at + 1);
  return true;
}
