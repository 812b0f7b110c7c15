/**
 * The CU quota of a stream: two token buckets, events per second and bytes per second, both
 * sized by the stream's current CU count (1 CU = `streams.cuEventsPerSecond` events/s and
 * `streams.cuBytesPerSecond` bytes/s; 5,000 and 50 MB by default). Whichever binds first
 * paces the stream.
 *
 * A batch takes all its tokens at once and may drive a bucket into debt; the next batch
 * waits until the debt is paid. So a batch never waits for more tokens than a bucket can
 * hold (a 10,000-event batch under a 5,000 events/s quota goes, then the stream rests 2 s),
 * and over any longer span the rate is exactly the quota, whatever the batch sizes. A
 * bucket holds at most `burstMs` worth of tokens, so a quiet stream starts with a short
 * burst, not a second's worth.
 *
 * Pure: the caller passes the time and sleeps for the wait it is told.
 */

/** The highest CU count a stream may be configured with, whatever the configuration. */
export const MAX_CU_CEILING = 1_024;

/** What one CU carries. */
export interface CuRates {
  eventsPerSecond: number;
  bytesPerSecond: number;
}

/** Default burst a quiet bucket holds: 100 ms of its rate. */
export const DEFAULT_BURST_MS = 100;

class DebtBucket {
  #ratePerMs = 0;
  #capacity = 0;
  #tokens = 0;
  #lastMs: number;

  constructor(ratePerSecond: number, burstMs: number, nowMs: number) {
    this.#lastMs = nowMs;
    this.setRate(ratePerSecond, burstMs, nowMs);
    this.#tokens = this.#capacity;
  }

  setRate(ratePerSecond: number, burstMs: number, nowMs: number): void {
    this.#refill(nowMs);
    this.#ratePerMs = ratePerSecond / 1000;
    this.#capacity = Math.max(1, this.#ratePerMs * burstMs);
    this.#tokens = Math.min(this.#tokens, this.#capacity);
  }

  /** Ms until the bucket is out of debt (0 when it is). */
  wait(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens / this.#ratePerMs);
  }

  take(amount: number): void {
    this.#tokens -= amount;
  }

  #refill(nowMs: number): void {
    if (nowMs <= this.#lastMs) return;
    this.#tokens = Math.min(this.#capacity, this.#tokens + (nowMs - this.#lastMs) * this.#ratePerMs);
    this.#lastMs = nowMs;
  }
}

/** The two buckets of one stream. */
export class CuQuota {
  readonly perCU: CuRates;
  readonly burstMs: number;
  #cu: number;
  readonly #events: DebtBucket;
  readonly #bytes: DebtBucket;

  /** Starts full at `nowMs` with `cu` CUs. Throws a RangeError for a CU count or rate out of range. */
  constructor(perCU: CuRates, cu: number, nowMs: number, burstMs = DEFAULT_BURST_MS) {
    assertPositive("eventsPerSecond", perCU.eventsPerSecond);
    assertPositive("bytesPerSecond", perCU.bytesPerSecond);
    assertCU(cu);
    this.perCU = perCU;
    this.burstMs = burstMs;
    this.#cu = cu;
    this.#events = new DebtBucket(perCU.eventsPerSecond * cu, burstMs, nowMs);
    this.#bytes = new DebtBucket(perCU.bytesPerSecond * cu, burstMs, nowMs);
  }

  get cu(): number {
    return this.#cu;
  }

  /** Events per second the quota allows now. */
  get eventsPerSecond(): number {
    return this.perCU.eventsPerSecond * this.#cu;
  }

  /** Bytes per second the quota allows now. */
  get bytesPerSecond(): number {
    return this.perCU.bytesPerSecond * this.#cu;
  }

  /** Resizes the buckets' rates to `cu` CUs from `nowMs`; tokens and debt stay. */
  setCU(cu: number, nowMs: number): void {
    assertCU(cu);
    this.#cu = cu;
    this.#events.setRate(this.perCU.eventsPerSecond * cu, this.burstMs, nowMs);
    this.#bytes.setRate(this.perCU.bytesPerSecond * cu, this.burstMs, nowMs);
  }

  /**
   * A batch of `events` events and `bytes` bytes asks to go at `nowMs`. Returns 0 and takes
   * the tokens when neither bucket is in debt; otherwise takes nothing and returns the ms
   * to wait before asking again.
   */
  take(events: number, bytes: number, nowMs: number): number {
    const waitMs = Math.max(this.#events.wait(nowMs), this.#bytes.wait(nowMs));
    if (waitMs > 0) return waitMs;
    this.#events.take(events);
    this.#bytes.take(bytes);
    return 0;
  }
}

function assertPositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name}: must be a finite number above 0, got ${value}`);
}

function assertCU(cu: number): void {
  if (!Number.isInteger(cu) || cu < 1 || cu > MAX_CU_CEILING) {
    throw new RangeError(`cu: must be an integer from 1 to ${MAX_CU_CEILING}, got ${cu}`);
  }
}
