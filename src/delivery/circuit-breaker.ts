/**
 * The circuit breaker of one target: it stops sending to an endpoint that keeps failing, and
 * lets one probe through from time to time to learn when it is back.
 *
 *     closed ──(failureThreshold consecutive failures)──▶ open
 *     open ──(openMs has passed; the next canSend is the probe)──▶ half-open
 *     half-open ──(probe succeeds)──▶ closed, pause back to openMs
 *     half-open ──(probe fails)──▶ open again, pause doubled (at most maxOpenMs)
 *
 * Pure: no timers, no I/O; the caller passes the time to every call, so tests run a whole
 * day of an endpoint's life in microseconds. The engine keeps one per target, in memory: a
 * restart closes every circuit, which costs at most `failureThreshold` attempts to learn again.
 *
 * What counts as a failure is {@link endpointSignal}'s decision, made once here: the
 * retryable outcomes that say the endpoint is down (5xx, 408, timeouts, connection errors).
 * A 429 does not (the endpoint is up and asks for less: pacing and `Retry-After` handle it),
 * and neither do other 4xx (the event's fault, not the endpoint's); an answer with a status
 * that is not a failure even shows the endpoint is up.
 */
import type { AttemptOutcome } from "./classify-outcome.js";

/** The states of a circuit. */
export const CIRCUIT_STATES = ["closed", "open", "half-open"] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/** A target's breaker settings, resolved with the configured defaults (see `RoutedTarget.pacing`). */
export interface CircuitBreakerPolicy {
  /** Consecutive failed attempts that open the circuit. Default 10. */
  failureThreshold: number;
  /** How long the circuit stays open before a probe, ms. Default 30,000. */
  openMs: number;
  /** Longest pause, reached by doubling after failed probes, ms. Default 600,000. */
  maxOpenMs: number;
}

/**
 * How long an unanswered probe holds the half-open circuit before another probe may go: the
 * longest per-attempt timeout (300,000 ms) plus the delivery lease margin (30,000 ms). The
 * engine reports every probe it starts, so this only matters if one is lost (an attempt
 * abandoned at shutdown, say); without it the circuit would stay half-open for good.
 */
export const DEFAULT_PROBE_TIMEOUT_MS = 330_000;

/** The answer of {@link CircuitBreaker.canSend}. */
export type CanSend =
  /** Send; `probe` when this attempt is the one probe of a half-open circuit: report its result with `probe: true`. */
  | { ok: true; probe: boolean }
  /** Do not send before `retryAtMs` (ms since the epoch); ask again then. */
  | { ok: false; retryAtMs: number };

/** What the status API shows of a circuit. */
export interface CircuitSnapshot {
  state: CircuitState;
  /** While open: when the next probe may go, ms since the epoch. */
  openUntilMs?: number;
  /** Failed attempts in a row (closed), counted toward `failureThreshold`. */
  consecutiveFailures: number;
  /** The pause the circuit opens (or opened) for, ms: `openMs`, doubled by each failed probe. */
  currentOpenMs: number;
}

/**
 * What one attempt says about the endpoint: `failure` (it is down: 5xx, 408, timeout,
 * connection error), `up` (it answered and is not failing: 2xx, or a 4xx/3xx that is the
 * event's fault), or `neutral` (nothing learnt: a 429, which is pacing's business, or a
 * request that never left, refused by the outbound policy or malformed).
 */
export type EndpointSignal = "failure" | "up" | "neutral";

/**
 * Classifies an attempt for the breaker and for target health, from the class
 * `classifyOutcome` gave it and its HTTP status (absent when no answer arrived).
 */
export function endpointSignal(outcome: AttemptOutcome, status: number | undefined): EndpointSignal {
  if (outcome === "success") return "up";
  if (status === 429) return "neutral";
  if (outcome === "retryable") return "failure";
  // Permanent: with a status, the endpoint answered (the event's fault); without one, the
  // request never reached it (invalid-request, blocked-address).
  return status === undefined ? "neutral" : "up";
}

/** A per-target circuit breaker. See the module comment for the states. */
export class CircuitBreaker {
  readonly policy: Readonly<CircuitBreakerPolicy>;
  readonly #probeTimeoutMs: number;
  #state: CircuitState = "closed";
  #failures = 0;
  #currentOpenMs: number;
  #openUntilMs = 0;
  /** Half-open: when the outstanding probe was granted; undefined when none is out. */
  #probeStartedAtMs: number | undefined;

  /**
   * @param policy Resolved settings; `failureThreshold` at least 1, `openMs` at least 1 and
   *   not above `maxOpenMs`. Throws a RangeError otherwise (the rule schema prevents it).
   * @param options.probeTimeoutMs See {@link DEFAULT_PROBE_TIMEOUT_MS}.
   */
  constructor(policy: CircuitBreakerPolicy, options: { probeTimeoutMs?: number } = {}) {
    const { failureThreshold, openMs, maxOpenMs } = policy;
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new RangeError(`failureThreshold: must be an integer of at least 1, got ${failureThreshold}`);
    }
    if (!Number.isFinite(openMs) || openMs < 1 || !Number.isFinite(maxOpenMs) || maxOpenMs < openMs) {
      throw new RangeError(`openMs and maxOpenMs: need 1 <= openMs <= maxOpenMs, got ${openMs} and ${maxOpenMs}`);
    }
    this.policy = Object.freeze({ failureThreshold, openMs, maxOpenMs });
    this.#probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.#currentOpenMs = openMs;
  }

  /**
   * The state as of the last call. An open circuit whose pause is over turns half-open on
   * the next {@link canSend}; {@link snapshot} reports it so already.
   */
  get state(): CircuitState {
    return this.#state;
  }

  /**
   * Whether an attempt may start at `nowMs`. Closed: always. Open: not before the pause
   * ends; then the first caller gets the probe (`probe: true`) and the circuit is
   * half-open. Half-open: no one else until the probe is reported (or has been out longer
   * than the probe timeout, when another probe is granted).
   */
  canSend(nowMs: number): CanSend {
    switch (this.#state) {
      case "closed":
        return { ok: true, probe: false };
      case "open":
        if (nowMs < this.#openUntilMs) return { ok: false, retryAtMs: this.#openUntilMs };
        this.#state = "half-open";
        this.#probeStartedAtMs = nowMs;
        return { ok: true, probe: true };
      case "half-open": {
        const started = this.#probeStartedAtMs;
        if (started !== undefined && nowMs < started + this.#probeTimeoutMs) {
          return { ok: false, retryAtMs: started + this.#probeTimeoutMs };
        }
        this.#probeStartedAtMs = nowMs;
        return { ok: true, probe: true };
      }
    }
  }

  /**
   * An attempt succeeded (or otherwise showed the endpoint up). Closed: the failure count
   * starts over. The probe: the circuit closes and the pause is back to `openMs`. Other
   * attempts while open or half-open (sent before it opened) change nothing: the probe decides.
   */
  onSuccess(_nowMs: number, options: { probe?: boolean } = {}): void {
    if (this.#state === "closed") {
      this.#failures = 0;
    } else if (options.probe === true && this.#state === "half-open") {
      this.#state = "closed";
      this.#failures = 0;
      this.#currentOpenMs = this.policy.openMs;
      this.#probeStartedAtMs = undefined;
    }
  }

  /**
   * An attempt failed. Closed: counts toward the threshold, which opens the circuit for
   * `openMs`. The probe: open again for twice the last pause, at most `maxOpenMs`. Other
   * attempts while open or half-open change nothing.
   */
  onFailure(nowMs: number, options: { probe?: boolean } = {}): void {
    if (this.#state === "closed") {
      this.#failures++;
      if (this.#failures >= this.policy.failureThreshold) this.#open(nowMs, this.policy.openMs);
    } else if (options.probe === true && this.#state === "half-open") {
      this.#open(nowMs, Math.min(this.#currentOpenMs * 2, this.policy.maxOpenMs));
    }
  }

  /**
   * An attempt taught nothing about the endpoint (a 429, a request refused before it left).
   * The probe's slot is given back, so the next {@link canSend} grants another probe.
   */
  onNeutral(_nowMs: number, options: { probe?: boolean } = {}): void {
    if (options.probe === true && this.#state === "half-open") this.#probeStartedAtMs = undefined;
  }

  /**
   * Reports an attempt by its outcome: {@link endpointSignal}, then `onSuccess`,
   * `onFailure` or `onNeutral`. The one call the engine makes after each attempt. Returns the
   * signal.
   */
  record(
    nowMs: number,
    result: { outcome: AttemptOutcome; status?: number },
    options: { probe?: boolean } = {},
  ): EndpointSignal {
    const signal = endpointSignal(result.outcome, result.status);
    if (signal === "up") this.onSuccess(nowMs, options);
    else if (signal === "failure") this.onFailure(nowMs, options);
    else this.onNeutral(nowMs, options);
    return signal;
  }

  /** The circuit as of `nowMs`, for the status API: an open circuit past its pause shows half-open. */
  snapshot(nowMs: number): CircuitSnapshot {
    const state = this.#state === "open" && nowMs >= this.#openUntilMs ? "half-open" : this.#state;
    return {
      state,
      ...(state === "open" ? { openUntilMs: this.#openUntilMs } : {}),
      consecutiveFailures: this.#failures,
      currentOpenMs: this.#currentOpenMs,
    };
  }

  #open(nowMs: number, pauseMs: number): void {
    this.#state = "open";
    this.#currentOpenMs = pauseMs;
    this.#openUntilMs = nowMs + pauseMs;
    this.#probeStartedAtMs = undefined;
    this.#failures = 0;
  }
}
