/**
 * Target pacing as the delivery engine applies it, per target: a token bucket for its rate,
 * a circuit breaker, and the health policy that disables it (`target-health.ts`). Pacers are
 * kept by target beyond the life of the target's lane (a lane goes when it is idle), and
 * made again when the target's rule brings a new pacing.
 */
import type { AttemptOutcome } from "./classify-outcome.js";
import { CircuitBreaker, type CircuitSnapshot } from "./circuit-breaker.js";
import type { TargetPacing } from "./router.js";
import type { TargetHealth } from "./target-health.js";
import { TokenBucket } from "./token-bucket.js";

/** Which target a delivery goes to. */
export interface TargetAddress {
  bus: string;
  rule: string;
  targetId: string;
}

/** The key of a target's lane and pacer. */
export function targetKey(target: TargetAddress): string {
  return `${target.bus}\u0000${target.rule}\u0000${target.targetId}`;
}

/** What paces one target. */
interface Pacer {
  target: TargetAddress;
  /** The pacing it was made from: a changed rule brings a new object, and a new pacer. */
  pacing: TargetPacing | undefined;
  bucket?: TokenBucket;
  breaker?: CircuitBreaker;
}

/** Options of {@link createTargetPacers}. */
export interface TargetPacersOptions {
  /** The target's resolved pacing, asked when its pacer is made and at each gate. */
  pacingOf?: (target: TargetAddress) => TargetPacing | undefined;
  /** Disables targets (410, failing too long); without it none is. */
  health?: TargetHealth;
}

/** The pacers of one engine. */
export interface TargetPacers {
  /** The target's pacing; undefined when none is known. */
  pacingOf(target: TargetAddress): TargetPacing | undefined;
  /**
   * May the target of lane `laneKey` start an attempt now: 0 for yes, else the ms to wait (an
   * open circuit's probe time, a rate limit's next token). A yes is a start: the token is
   * spent, a half-open circuit's probe is out ({@link TargetPacers.takeProbe} says so).
   * Lanes without a pacer (ordered lanes) always may.
   */
  gate(laneKey: string, nowMs: number): number;
  /** Whether the start the gate just allowed on `laneKey` is a probe; asking clears it. */
  takeProbe(laneKey: string): boolean;
  /** A probe that was not sent after all (its target is disabled): the circuit may probe again. */
  returnProbe(laneKey: string, nowMs: number): void;
  /**
   * Tells the target's circuit and health how an attempt ended. Returns true when the target
   * has a circuit, whose state may have changed: its lane should ask the gate again.
   */
  afterAttempt(
    laneKey: string,
    target: TargetAddress,
    attempt: { outcome: AttemptOutcome; status?: number; probe: boolean },
    nowMs: number,
  ): boolean;
  /** Why the target is disabled, or undefined when it is enabled. */
  disabledReason(target: TargetAddress): string | undefined;
  /** The target's circuit for the status API; undefined when it has none (yet). */
  circuitOf(target: TargetAddress, nowMs: number): CircuitSnapshot | undefined;
}

/** Creates the pacers of an engine. */
export function createTargetPacers(options: TargetPacersOptions, clock: { nowMs(): number }): TargetPacers {
  const { health } = options;
  const pacers = new Map<string, Pacer>();
  /** Lanes whose last allowed start was a half-open circuit's probe. */
  const probing = new Set<string>();

  /**
   * The target's pacer, made on first use, and again when its pacing changed. `key` is the
   * target's key when the caller has it (a lane's), so that it is not built again per attempt.
   */
  function pacerOf(target: TargetAddress, key = targetKey(target)): Pacer {
    let pacer = pacers.get(key);
    const pacing = options.pacingOf?.(target);
    if (pacer === undefined || pacer.pacing !== pacing) {
      pacer = { target: { bus: target.bus, rule: target.rule, targetId: target.targetId }, pacing };
      if (pacing?.ratePerSecond !== undefined) {
        pacer.bucket = new TokenBucket({ ratePerSecond: pacing.ratePerSecond }, clock.nowMs());
      }
      if (pacing?.circuitBreaker !== undefined) pacer.breaker = new CircuitBreaker(pacing.circuitBreaker);
      pacers.set(key, pacer);
    }
    return pacer;
  }

  return {
    pacingOf: (target) => pacerOf(target).pacing,
    gate(laneKey, nowMs) {
      const known = pacers.get(laneKey);
      if (known === undefined) return 0;
      const pacer = pacerOf(known.target, laneKey); // the rule may have changed since
      if (pacer.breaker === undefined) return pacer.bucket?.take(nowMs) ?? 0;
      const verdict = pacer.breaker.canSend(nowMs);
      if (!verdict.ok) return Math.max(1, verdict.retryAtMs - nowMs);
      const waitMs = pacer.bucket?.take(nowMs) ?? 0;
      if (waitMs > 0) {
        if (verdict.probe) pacer.breaker.onNeutral(nowMs, { probe: true }); // not sent: give the probe back
        return waitMs;
      }
      if (verdict.probe) probing.add(laneKey);
      return 0;
    },
    takeProbe: (laneKey) => probing.delete(laneKey),
    returnProbe(laneKey, nowMs) {
      pacers.get(laneKey)?.breaker?.onNeutral(nowMs, { probe: true });
    },
    afterAttempt(laneKey, target, attempt, nowMs) {
      const pacer = pacers.get(laneKey);
      const result: { outcome: AttemptOutcome; status?: number } = { outcome: attempt.outcome };
      if (attempt.status !== undefined) result.status = attempt.status;
      pacer?.breaker?.record(nowMs, result, { probe: attempt.probe });
      if (health !== undefined) {
        // Without a known pacing (a target built by hand) a 410 still disables the target.
        const disableAfterFailingSeconds = pacer?.pacing?.disableAfterFailingSeconds ?? Number.POSITIVE_INFINITY;
        if (pacer?.pacing !== undefined || attempt.status === 410) {
          health.afterAttempt(target, result, { disableAfterFailingSeconds });
        }
      }
      return pacer?.breaker !== undefined;
    },
    disabledReason: (target) => health?.isDisabled(target),
    circuitOf: (target, nowMs) => pacers.get(targetKey(target))?.breaker?.snapshot(nowMs),
  };
}
