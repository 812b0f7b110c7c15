/**
 * Where each schedule of the bus scheduler got to: the position of its last fire published
 * to its bus. A restart reads it back, so a schedule goes on from there and applies its
 * missed-run policy to the fires in between. It is state, not definition: the schedules
 * themselves come from rule files.
 */

/** One schedule's saved position. */
export interface StoredSchedulePosition {
  /** The schedule's name. */
  name: string;
  /** The schedule source's position: the ISO 8601 time of the last fire published. */
  position: string;
  /** When it was recorded, ms since the epoch. */
  recordedAtMs: number;
}

/** Positions of schedules, by name. */
export interface ScheduleStore {
  /** The position of the schedule's last published fire; undefined when it never fired. */
  lastFired(name: string): string | undefined;
  /** Records the position once the fires up to it are durable on the bus. */
  recordFired(name: string, position: string, atMs: number): void;
  /** Drops the schedule's position (it was removed or disabled): it starts afresh if it comes back. */
  forget(name: string): void;
  /** Every saved position, by name. */
  list(): StoredSchedulePosition[];
}
