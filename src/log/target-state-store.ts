/**
 * The runtime state of targets: whether one is disabled and why, and since when it has been
 * failing. It is state, not definition: a rule file or an API rule says what a target is;
 * this says how it is doing, and survives restarts and reloads.
 */

/** Whether deliveries go to a target. */
export const TARGET_STATES = ["enabled", "disabled"] as const;
export type TargetStateName = (typeof TARGET_STATES)[number];

/**
 * Why a target was disabled, for programs (the `reason` is the sentence for people):
 * `gone` (it answered 410 Gone), `failing` (it failed without a success for
 * `disableAfterFailingSeconds`), `api` (`POST .../targets/{target}:disable`).
 */
export const TARGET_DISABLE_CAUSES = ["gone", "failing", "api"] as const;
export type TargetDisableCause = (typeof TARGET_DISABLE_CAUSES)[number];

/** Which target: its bus, rule and id. */
export interface TargetAddress {
  bus: string;
  rule: string;
  targetId: string;
}

/** A target's state as stored. A target never written has none: it is enabled and not failing. */
export interface StoredTargetState extends TargetAddress {
  state: TargetStateName;
  /** While disabled: why, as a sentence ("the endpoint answered 410 Gone at 2026-..."). */
  reason?: string;
  /** While disabled: what disabled it. */
  cause?: TargetDisableCause;
  /** While disabled: when, ms since the epoch. */
  disabledAtMs?: number;
  /**
   * When the target's current run of failures began (the first failure after a success),
   * ms since the epoch; absent while it is not failing.
   */
  failingSinceMs?: number;
  /** The last change, ms since the epoch. */
  updatedAtMs: number;
}

/**
 * Target states. The delivery engine asks for a target's state on every attempt, so reads
 * come from memory: a target's row is read once (absent included) and kept until this store
 * itself changes it (the API and the engine share the process). Writes happen only on
 * transitions (disabled, enabled, started failing, succeeded again), never per attempt.
 */
export interface TargetStateStore {
  /** The target's state, undefined when none was ever written. A memory lookup after the first. */
  get(address: TargetAddress): StoredTargetState | undefined;
  /**
   * Disables the target, keeping its `failingSinceMs`. A target already disabled keeps its
   * first reason, cause and time (the first cause is the one to fix); the stored state is returned.
   */
  disable(
    address: TargetAddress,
    why: { reason: string; cause: TargetDisableCause; atMs: number },
  ): StoredTargetState;
  /**
   * Enables the target and forgets its failing run, so that an old `failingSinceMs` does
   * not disable it again at its next failure. Returns the stored state.
   */
  enable(address: TargetAddress, atMs: number): StoredTargetState;
  /** Records that the target started failing at `sinceMs`, unless a run is already recorded. */
  markFailing(address: TargetAddress, sinceMs: number): void;
  /** Clears the target's failing run (a success); nothing is written when none is recorded. */
  markSucceeded(address: TargetAddress, atMs: number): void;
  /** Every disabled target, for a view of them all and for the dispatcher at start-up. */
  listDisabled(): StoredTargetState[];
  /**
   * Deletes the states of a rule's targets (or, without `rule`, of a bus's rules), so that a
   * rule deleted and created again under the same names starts enabled. Returns how many.
   */
  deleteStatesOf(bus: string, rule?: string): number;
}
