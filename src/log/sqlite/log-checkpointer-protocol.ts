/** Messages between the main thread and the log checkpointer thread. */
import type { DurabilityMode } from "../../config/defaults.js";

/** What the checkpointer thread is started with. */
export interface CheckpointerConfig {
  /** The log file. */
  path: string;
  durability: DurabilityMode;
  busyTimeoutMs: number;
}

export type ToCheckpointer = { type: "checkpoint" } | { type: "close" };

export type FromCheckpointer = { type: "open-failed"; message: string };
