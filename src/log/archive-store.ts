/**
 * Archives: the events of a bus that match a pattern, kept apart from the log for a
 * retention of their own (EventBridge's archives). The archiver (src/delivery/archiver.ts)
 * fills them; replays read them back.
 */
import type { JsonObject, StoredEvent } from "../types.js";

/** What a client gives to create an archive. */
export interface ArchiveDefinition {
  /** Unique among the archives; letters, digits, `.`, `_`, `-`, 1 to 64 characters. */
  name: string;
  /** The bus whose log it follows. */
  bus: string;
  description?: string;
  /**
   * An event pattern as written (bus vocabulary allowed: `detail-type`, `detail`); only the
   * events it matches are archived. Absent: every event of the bus.
   */
  pattern?: JsonObject;
  /** Days an archived event is kept, counted from when the log received it; 0 keeps it forever. */
  retentionDays: number;
}

/**
 * The states of an archive. `enabled`: it archives. `deleting`: deleted, its events being
 * removed in batches; it is invisible to every read but the purge, and its name is free.
 */
export const ARCHIVE_STATES = ["enabled", "deleting"] as const;
export type ArchiveState = (typeof ARCHIVE_STATES)[number];

/** An archive as stored, with its counters. */
export interface StoredArchive extends ArchiveDefinition {
  /**
   * Internal id, never reused: archived events hang off it, so an archive deleted and
   * created again under the same name starts empty, and a replay notices that its archive
   * is not the one it started from.
   */
  id: number;
  state: ArchiveState;
  /** The offset of the bus's log the archiver has passed (the archive's own checkpoint). */
  throughOffset: number;
  /** Events archived and not yet pruned. */
  eventCount: number;
  /** Their size in all, the UTF-8 bytes of their JSON. */
  sizeBytes: number;
  createdAtMs: number;
}

/** A time window of an archive, both ends inclusive, up to an offset of the log. */
export interface ArchiveWindow {
  /** Received by the log at or after this time, ms since the epoch. */
  fromMs: number;
  /** Received at or before this time. */
  toMs: number;
  /** At most this offset of the bus's log. */
  throughOffset: number;
}

/** What one retention pass deleted. */
export interface ArchivePruneResult {
  /** Archived events past their archive's retention. */
  expired: number;
  /** Events of deleted archives. */
  ofDeletedArchives: number;
}

/** Archives and their events, in the state file. */
export interface ArchiveStore {
  /** The enabled archives, by name. */
  list(): StoredArchive[];
  /** The enabled archive of that name. */
  get(name: string): StoredArchive | undefined;
  /**
   * Creates an archive that starts archiving after `throughOffset` (the bus's current end:
   * no backfill). Throws `ArchiveAlreadyExists` when an enabled archive has the name.
   */
  create(definition: ArchiveDefinition, throughOffset: number, createdAtMs: number): StoredArchive;
  /**
   * Deletes an archive: at once for every read (and its name is free), its events in
   * batches by {@link ArchiveStore.pruneOlderThan}. False when there is no such archive.
   */
  delete(name: string): boolean;
  /**
   * Stores `events` (already filtered by the archive's pattern, offsets ascending) and moves
   * the archive's checkpoint to `throughOffset`, in one transaction, with its counters.
   * Events already stored are skipped. Returns false, storing nothing, when the archive is
   * no longer enabled (deleted meanwhile).
   */
  commitArchived(archiveId: number, throughOffset: number, events: readonly StoredEvent[]): boolean;
  /**
   * Archived events of the window with offset > `afterOffset`, oldest offset first, at most
   * `limit`. They come back as the log held them (bus, offset, received time, JSON).
   */
  readWindow(
    archiveId: number,
    bus: string,
    afterOffset: number,
    window: ArchiveWindow,
    limit: number,
  ): StoredEvent[];
  /** How many archived events the window holds. */
  countWindow(archiveId: number, window: ArchiveWindow): number;
  /** The first offset archived at or after `fromMs`, or undefined when none was. */
  firstOffsetFrom(archiveId: number, fromMs: number): number | undefined;
  /**
   * Retention: deletes archived events older than their archive's `retentionDays` (at
   * `nowMs`), and the events of deleted archives (then the archives themselves), in
   * transactions of `batchSize` rows (default 2,000), yielding to the event loop between.
   */
  pruneOlderThan(nowMs: number, batchSize?: number): Promise<ArchivePruneResult>;
  /**
   * The lowest checkpoint of the enabled archives of `bus`, or undefined when it has none:
   * log retention must not delete what an archive has not passed yet.
   */
  lowestCheckpoint(bus: string): number | undefined;
}
