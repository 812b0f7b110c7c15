/**
 * A token bucket: the rate limit of one target (`pacing.ratePerSecond`), and of publishing
 * to a bus or with an API key (src/api/publish-rate-limit.ts). It holds up to
 * `burst` tokens, refills at `ratePerSecond`, and each attempt takes one. It starts full, so
 * a quiet target may send a burst at once, then settles to the rate.
 *
 * Pure: the caller passes the time, and a refused `take` says how long to wait instead of
 * sleeping, so the engine can schedule its lane's next look on the timer it already has.
 */

/** Options of {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second; > 0 and finite. */
  ratePerSecond: number;
  /**
   * Most tokens held, so most attempts started at once after a quiet spell. Default one
   * second's worth (`ratePerSecond`), and never below 1 (a rate of 0.5/s still allows one
   * attempt every 2 s).
   */
  burst?: number;
}

/**
 * Below a token by less than this counts as a whole one: the refill is computed in
 * floating point, and a wait rounded up to whole ms must always be enough.
 */
const EPSILON = 1e-9;

export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  #tokens: number;
  #lastMs: number;

  /** Starts full at `nowMs`. Throws a RangeError for a rate or burst out of range. */
  constructor(options: TokenBucketOptions, nowMs: number) {
    const { ratePerSecond } = options;
    if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0) {
      throw new RangeError(`ratePerSecond: must be a finite number above 0, got ${ratePerSecond}`);
    }
    const burst = options.burst ?? Math.max(1, ratePerSecond);
    if (!Number.isFinite(burst) || burst < 1) {
      throw new RangeError(`burst: must be a finite number of at least 1, got ${burst}`);
    }
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#lastMs = nowMs;
  }

  /**
   * Takes a token at `nowMs` if there is one: returns 0 and the attempt may start.
   * Otherwise takes nothing and returns the ms (at least 1) after which one will be there.
   * A clock that moves back adds nothing and takes nothing away.
   */
  take(nowMs: number): number {
    const waitMs = this.wait(nowMs);
    if (waitMs === 0) this.#tokens = Math.max(0, this.#tokens - 1);
    return waitMs;
  }

  /**
   * What {@link take} would answer at `nowMs`, taking nothing: 0 when a token is there, else
   * the ms (at least 1) until one is. For a caller that must check several buckets before
   * taking from any (the publish rate limits of a bus and of an API key).
   */
  wait(nowMs: number): number {
    this.#refill(nowMs);
    if (this.#tokens >= 1 - EPSILON) return 0;
    // Aimed at 1 - EPSILON, the level `take` accepts, so that float noise in the refill
    // never rounds a wait up by a whole ms (or leaves it a hair short).
    return Math.max(1, Math.ceil(((1 - EPSILON - this.#tokens) * 1000) / this.ratePerSecond));
  }

  /** Tokens there at `nowMs` (a fraction while refilling). */
  available(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  #refill(nowMs: number): void {
    if (nowMs <= this.#lastMs) return;
    this.#tokens = Math.min(this.burst, this.#tokens + ((nowMs - this.#lastMs) * this.ratePerSecond) / 1000);
    this.#lastMs = nowMs;
  }
}
