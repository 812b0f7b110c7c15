/**
 * Publish rate limits (issue 8): per bus (`limits.publishRatePerBus`) and per API key (its
 * `ratePerSecond`, set when the key is created). Both count events, not requests: a PutEvents
 * entry or a CloudEvent each take one token, so a batch of 100 costs what 100 single
 * requests cost. Each limit is a token bucket holding one second's worth, refilled at the rate.
 *
 * An event passes only if every limit that applies has a token; then it takes one from each.
 * A refused event takes nothing, so a producer held back by its bus does not also spend its
 * key's budget.
 *
 * The token bucket is the delivery layer's (src/delivery/token-bucket.ts); the api layer sits
 * above delivery, so the import points down and the bucket stays where the targets' rate
 * limits use it. Ingest (src/events) sees only the {@link PublishAdmission} function.
 *
 * With no bus limit and a key without a rate (or no key), {@link PublishRateLimits.admissionFor}
 * returns undefined and ingest does no per-event work at all.
 */
import { TokenBucket } from "../delivery/token-bucket.js";
import type { PublishAdmission, PublishRefusal } from "../events/ingest.js";
import type { Clock } from "../types.js";
import type { Principal } from "./auth-keys.js";

export interface PublishRateLimits {
  /** The admission of one request by `principal` (undefined: auth off); undefined when no limit applies. */
  admissionFor(principal: Principal | undefined): PublishAdmission | undefined;
}

/**
 * Creates the limits. Buckets are made on first use: a bus's when an event for it passes
 * every other check (so only existing buses get one), a key's on its first publish.
 *
 * @param options.ratePerBus `limits.publishRatePerBus`, events per second; 0: unlimited.
 */
export function createPublishRateLimits(options: { ratePerBus: number; clock: Clock }): PublishRateLimits {
  const { ratePerBus, clock } = options;
  const busBuckets = new Map<string, TokenBucket>();
  const keyBuckets = new Map<string, TokenBucket>();

  const busBucket = (bus: string, nowMs: number): TokenBucket => {
    let bucket = busBuckets.get(bus);
    if (bucket === undefined) {
      bucket = new TokenBucket({ ratePerSecond: ratePerBus }, nowMs);
      busBuckets.set(bus, bucket);
    }
    return bucket;
  };

  const keyBucket = (principal: Principal, ratePerSecond: number, nowMs: number): TokenBucket => {
    let bucket = keyBuckets.get(principal.keyId);
    if (bucket?.ratePerSecond !== ratePerSecond) {
      bucket = new TokenBucket({ ratePerSecond }, nowMs);
      keyBuckets.set(principal.keyId, bucket);
    }
    return bucket;
  };

  const busRefusal = (bus: string, waitMs: number): PublishRefusal => ({
    waitMs,
    limit: `${ratePerBus} events/s on bus ${JSON.stringify(bus)} (limits.publishRatePerBus)`,
  });

  /** The admission of a request under the bus limit only (no key rate); undefined without one. */
  const busOnly: PublishAdmission | undefined =
    ratePerBus <= 0
      ? undefined
      : (bus) => {
          const nowMs = clock.nowMs();
          const waitMs = busBucket(bus, nowMs).take(nowMs);
          return waitMs === 0 ? undefined : busRefusal(bus, waitMs);
        };

  /** The admission of a key with a rate: its bucket, then the bus's. */
  const withKeyRate = (principal: Principal, keyRate: number): PublishAdmission => {
    const keyRefusal = (waitMs: number): PublishRefusal => ({
      waitMs,
      limit: `${keyRate} events/s of API key ${principal.keyId} (its ratePerSecond)`,
    });
    return (bus) => {
      const nowMs = clock.nowMs();
      const forKey = keyBucket(principal, keyRate, nowMs);
      // Look before taking: the key's token is taken only once the bus has given one.
      const keyWaitMs = forKey.wait(nowMs);
      if (keyWaitMs > 0) return keyRefusal(keyWaitMs);
      if (ratePerBus > 0) {
        const busWaitMs = busBucket(bus, nowMs).take(nowMs);
        if (busWaitMs > 0) return busRefusal(bus, busWaitMs);
      }
      forKey.take(nowMs);
      return undefined;
    };
  };
  /** Principals are cached frozen per key version (src/api/auth-keys.ts), so one admission each. */
  const byPrincipal = new WeakMap<Principal, PublishAdmission>();

  return {
    admissionFor(principal) {
      const keyRate = principal?.ratePerSecond;
      if (principal === undefined || keyRate === undefined) return busOnly;
      let admission = byPrincipal.get(principal);
      if (admission === undefined) {
        admission = withKeyRate(principal, keyRate);
        byPrincipal.set(principal, admission);
      }
      return admission;
    },
  };
}
