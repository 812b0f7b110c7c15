/**
 * The redis source: reads a Redis stream through a consumer group, so that Redis keeps the
 * position and the entries handed over but not yet confirmed (the group's pending list).
 * An entry is acknowledged (XACK) only after the stream confirmed the batch holding it; on
 * start the source first hands over its own pending entries again, then reads new ones.
 */
import type { SourceBatch, SourceDefinition } from "../connector.js";
import { entryToEvent, type StreamEntry } from "./entry-to-event.js";
import { createRedisClient, DEFAULT_REDIS_URL, REDIS_URL_SCHEMA, redisReplyCode } from "./redis-client.js";
import {
  parseAutoClaimReply,
  parseGroupBacklog,
  parseReadGroupReply,
  type ReadResult,
} from "./stream-replies.js";

export interface RedisSourceConfig {
  /** Server URL, `redis://` or `rediss://` (default redis://127.0.0.1:6379). */
  url?: string;
  /** Key of the stream to read; created empty (MKSTREAM) with the group when missing. */
  stream: string;
  /** Consumer group (default `relaybus-<stream name>`, the Relaybus stream's name). */
  group?: string;
  /** Consumer name inside the group (default `relaybus`); keep it stable across restarts. */
  consumer?: string;
  /** Where a group created by this source starts: `0` (default) the whole stream, `$` only new entries. */
  startId?: "$" | "0";
  /** How long one blocking read waits on an idle stream before the source looks around (default 5,000 ms). */
  blockMs?: number;
  /** Entries pending this long in the group, under any consumer, are claimed and handed over (default 300,000 ms). */
  claimIdleMs?: number;
}

const DEFAULT_BLOCK_MS = 5_000;
const DEFAULT_CLAIM_IDLE_MS = 300_000;
/** Bounds an acknowledgement or a backlog query, so that a hung server cannot hold a stop. */
const COMMAND_TIMEOUT_MS = 10_000;

export const redisSource: SourceDefinition<RedisSourceConfig> = {
  name: "redis",
  kind: "source",
  description:
    "Reads a Redis stream through a consumer group (XREADGROUP), acknowledging confirmed entries",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["stream"],
    properties: {
      url: REDIS_URL_SCHEMA,
      stream: { type: "string", minLength: 1, description: "Key of the stream to read" },
      group: {
        type: "string",
        minLength: 1,
        description: "Consumer group (default relaybus-<stream name>)",
      },
      consumer: {
        type: "string",
        minLength: 1,
        description: "Consumer name in the group (default relaybus)",
      },
      startId: {
        enum: ["$", "0"],
        description: "Where a newly created group starts: 0 (default) or $",
      },
      blockMs: {
        type: "integer",
        minimum: 1,
        description: "Longest blocking read on an idle stream, ms (default 5000)",
      },
      claimIdleMs: {
        type: "integer",
        minimum: 1,
        description: "Claim entries pending this long, ms (default 300000)",
      },
    },
  },
  create(config, context) {
    const { stream, startId = "0" } = config;
    const group = config.group ?? `relaybus-${context.streamName}`;
    const consumer = config.consumer ?? "relaybus";
    const blockMs = config.blockMs ?? DEFAULT_BLOCK_MS;
    const claimIdleMs = config.claimIdleMs ?? DEFAULT_CLAIM_IDLE_MS;
    const url = config.url ?? DEFAULT_REDIS_URL;
    const name = `relaybus-source:${context.streamName}:${stream}`;
    const { logger, signal, maxBatchEvents, maxBatchWaitMs, clock } = context;
    // Blocking reads get a connection of their own, which an abort closes to end a read at
    // once. Acknowledgements go on another, so that one racing the abort still lands.
    const reader = createRedisClient(url, `${name}:read`, { logger });
    const acker = createRedisClient(url, `${name}:ack`, {
      logger,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    // A read whose reply a dropped connection lost left its entries pending under this
    // consumer; after a reconnect they are fetched again from the pending list.
    let ownPendingMayExist = true;
    reader.on("reconnecting", () => (ownPendingMayExist = true));
    const stopReading = () => reader.disconnect();

    async function readGroup(id: string, count: number, blockForMs?: number): Promise<ReadResult> {
      const block = blockForMs === undefined ? [] : ["BLOCK", Math.max(1, Math.ceil(blockForMs))];
      const args = ["GROUP", group, consumer, "COUNT", count, ...block, "STREAMS", stream, id];
      return parseReadGroupReply(await reader.call("XREADGROUP", ...args));
    }

    async function acknowledge(ids: readonly string[]): Promise<void> {
      if (ids.length > 0) await acker.call("XACK", stream, group, ...ids);
    }

    async function handOver(
      entries: readonly StreamEntry[],
      handle: (batch: SourceBatch) => Promise<void>,
    ): Promise<void> {
      if (entries.length === 0) return;
      await handle({ events: entries.map((entry) => entryToEvent(stream, entry)) });
      await acknowledge(entries.map((entry) => entry.id));
    }

    async function ensureGroup(): Promise<void> {
      try {
        await reader.call("XGROUP", "CREATE", stream, group, startId, "MKSTREAM");
      } catch (error) {
        if (redisReplyCode(error) !== "BUSYGROUP") throw error;
      }
    }

    /** Hands over, from the start, the entries delivered to this consumer and never acknowledged. */
    async function handOverOwnPending(
      handle: (batch: SourceBatch) => Promise<void>,
    ): Promise<void> {
      let after = "0";
      while (!signal.aborted) {
        const { entries, deletedIds, lastId } = await readGroup(after, maxBatchEvents);
        if (lastId === undefined) return;
        if (deletedIds.length > 0) {
          logger.warn("redis source: pending entries were deleted before they were confirmed", {
            stream,
            ids: deletedIds,
          });
          await acknowledge(deletedIds);
        }
        await handOver(entries, handle);
        after = lastId;
      }
    }

    /** Takes over entries that sat pending for `claimIdleMs` (a consumer that died, a lost reply). */
    async function claimIdle(handle: (batch: SourceBatch) => Promise<void>): Promise<void> {
      let cursor = "0-0";
      do {
        const args = [stream, group, consumer, claimIdleMs, cursor, "COUNT", maxBatchEvents];
        const claimed = parseAutoClaimReply(await reader.call("XAUTOCLAIM", ...args));
        if (claimed.entries.length > 0) {
          logger.info("redis source: claimed idle pending entries", {
            stream,
            count: claimed.entries.length,
          });
        }
        await handOver(claimed.entries, handle);
        cursor = claimed.cursor;
      } while (cursor !== "0-0" && !signal.aborted);
    }

    /**
     * New entries: one read waits up to `blockMs` for the first; once some came, further reads
     * fill the batch for at most `maxBatchWaitMs` more.
     */
    async function readNew(): Promise<StreamEntry[]> {
      const batch = (await readGroup(">", maxBatchEvents, blockMs)).entries;
      if (batch.length === 0) return batch;
      const deadlineMs = clock.nowMs() + maxBatchWaitMs;
      while (batch.length < maxBatchEvents && !signal.aborted) {
        const leftMs = deadlineMs - clock.nowMs();
        if (leftMs < 1) break;
        const more = (await readGroup(">", maxBatchEvents - batch.length, leftMs)).entries;
        if (more.length === 0) break;
        batch.push(...more);
      }
      return batch;
    }

    return {
      async run(handle) {
        if (signal.aborted) return;
        signal.addEventListener("abort", stopReading, { once: true });
        try {
          await ensureGroup();
          let lastClaimMs = Number.NEGATIVE_INFINITY;
          while (!signal.aborted) {
            if (ownPendingMayExist) {
              ownPendingMayExist = false;
              await handOverOwnPending(handle);
            } else if (clock.nowMs() - lastClaimMs >= claimIdleMs) {
              lastClaimMs = clock.nowMs();
              await claimIdle(handle);
            } else {
              await handOver(await readNew(), handle);
            }
          }
        } catch (error) {
          // A read cut by the abort, or a batch the stopping stream refused: both stay pending
          // in the group and come again on the next run.
          if (signal.aborted) return;
          throw error;
        } finally {
          signal.removeEventListener("abort", stopReading);
        }
      },
      async backlog() {
        try {
          return parseGroupBacklog(await acker.call("XINFO", "GROUPS", stream), group);
        } catch {
          return undefined;
        }
      },
      async close() {
        // run has settled, so no read or acknowledgement is in flight.
        reader.disconnect();
        acker.disconnect();
      },
    };
  },
};
