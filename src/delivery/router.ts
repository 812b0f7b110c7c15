/**
 * What the dispatcher needs from the rules: for one event of a bus, the targets it goes to.
 * The rule registry (src/rules) implements this; the service wires the two together, so
 * delivery never imports rules.
 */
import type { RetryPolicy, SigningSecret } from "../log/log-engine.js";
import type { CompiledTransform } from "../transform/compile-transform.js";
import type { CloudEvent, TargetFormat } from "../types.js";

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
}

/** Routes events to targets. Must be cheap: it runs once per event. */
export interface Router {
  /** The targets `event` of `bus` goes to, in rule order then target order. */
  route(bus: string, event: CloudEvent): RoutedTarget[];
}
