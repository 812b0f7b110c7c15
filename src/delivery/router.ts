/**
 * What the dispatcher needs from the rules: for one event of a bus, the targets it goes to.
 * The rule registry (src/rules) implements this; the service wires the two together, so
 * delivery never imports rules.
 */
import type { RetryPolicy, SigningSecret } from "../log/log-engine.js";
import type { CompiledTransform } from "../transform/compile-transform.js";
import type { CloudEvent, TargetFormat } from "../types.js";
import type { CircuitBreakerPolicy } from "./circuit-breaker.js";

/** A target's pacing (`pacing` of its definition), resolved with the configured defaults. */
export interface TargetPacing {
  /** Most attempts started per second (a token bucket, burst one second's worth); absent: unlimited. */
  ratePerSecond?: number;
  /**
   * Most attempts in flight at once, as the target set it; absent: the engine's own
   * per-target default, within `delivery.maxInFlight` for the whole engine.
   */
  maxInFlight?: number;
  /** The circuit breaker's settings; absent when the target has none (`circuitBreaker: false`). */
  circuitBreaker?: CircuitBreakerPolicy;
  /** Disable the target once it has failed without a success for this long, seconds. */
  disableAfterFailingSeconds: number;
}

/** A target of a matching rule, with everything resolved and compiled at load. */
export interface RoutedTarget {
  /** The rule that matched. */
  rule: string;
  targetId: string;
  url: string;
  headers: Record<string, string>;
  /** Per-attempt timeout, resolved with the configured default. */
  timeoutMs: number;
  format: TargetFormat;
  /** Present when `format` is `transform`. */
  transform?: CompiledTransform;
  retry: RetryPolicy;
  /**
   * Signing secrets a rule file gave the target (`signing.secrets`, `env:` already read).
   * They sign beside the secrets created through the API.
   */
  signingSecrets?: readonly SigningSecret[];
  /**
   * Rate and in-flight limits, circuit breaker, automatic disabling. Rule compilation always
   * sets it; it is absent only on targets built by hand (tests), which get no rate limit, no
   * breaker and no automatic disabling.
   */
  pacing?: TargetPacing;
}

/** Routes events to targets. Must be cheap: it runs once per event. */
export interface Router {
  /** The targets `event` of `bus` goes to, in rule order then target order. */
  route(bus: string, event: CloudEvent): RoutedTarget[];
}
