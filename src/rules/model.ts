/**
 * Rules and targets, as written in rule files (YAML) and sent to the API (JSON).
 * The shape is shared/DESIGN.md section 9; it only grows.
 */
import type { ConnectionDefinition } from "../log/connection-store.js";
import type { JsonObject, TargetFormat } from "../types.js";

export type { ConnectionDefinition };

/** Default most targets per rule (as EventBridge); `limits.maxTargetsPerRule` sets it. */
export const MAX_TARGETS_PER_RULE = 5;
/**
 * The most `limits.maxTargetsPerRule` may be set to: the rule schema's `maxItems`, so that
 * the schema editors read does not depend on one server's configuration.
 */
export const MAX_TARGETS_PER_RULE_CEILING = 100;

export interface WebhookEndpoint {
  /** http or https URL. */
  url: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Per-attempt timeout; default `delivery.timeoutMs` of the configuration. */
  timeoutMs?: number;
}

export interface RetryDefinition {
  /** Attempts in all, the first included (1 to 185; default 185). */
  maxAttempts?: number;
  /** Give up once the event is this old (60 to 86,400 s; default 86,400). */
  maxAgeSeconds?: number;
  /** First retry delay before jitter (default 1,000 ms). */
  baseDelayMs?: number;
  /** Growth factor of the delay (default 2). */
  factor?: number;
  /** Largest delay before jitter (default 300,000 ms); also the cap on a receiver's `Retry-After`. */
  maxDelayMs?: number;
  /**
   * An explicit list of delays instead of the exponential curve: the wait before retry n is
   * `delaysMs[n-1]`, the last one repeating. No jitter.
   */
  delaysMs?: number[];
}

/** Most signing secrets a target may list. */
export const MAX_SIGNING_SECRETS = 10;

/**
 * Standard Webhooks signing of a rule file's target. Rules created through the API get their
 * secrets from `POST /v1/buses/{bus}/rules/{rule}/targets/{target}/secrets` instead.
 */
export interface SigningDefinition {
  /**
   * 1 to {@link MAX_SIGNING_SECRETS} secrets, each active: `env:NAME` (the variable is read
   * when the file loads; unset is a problem of the file) or a literal `whsec_...` (HMAC-SHA256)
   * or `whsk_...` (ed25519 private key). Several during a rotation.
   */
  secrets: string[];
}

/** Most events per second a target's `pacing.ratePerSecond` may allow. */
export const MAX_TARGET_RATE_PER_SECOND = 100_000;
/** Most attempts in flight a target's `pacing.maxInFlight` may allow. */
export const MAX_TARGET_IN_FLIGHT = 1_000;
/** Shortest `pacing.disableAfterFailingSeconds`: one minute. */
export const MIN_DISABLE_AFTER_FAILING_SECONDS = 60;
/** Longest `pacing.disableAfterFailingSeconds`: 365 days. */
export const MAX_DISABLE_AFTER_FAILING_SECONDS = 31_536_000;

/**
 * The circuit breaker of a target: after `failureThreshold` consecutive failed attempts
 * (5xx, 408, timeouts, connection errors; not 429 and not other 4xx) nothing is sent for
 * `openSeconds`, then one probe goes; its failure doubles the pause, up to `maxOpenSeconds`.
 * Each field defaults to `delivery.circuitBreaker` of the configuration.
 */
export interface CircuitBreakerDefinition {
  /** Consecutive failed attempts that open the circuit (1 to 10,000; default 10). */
  failureThreshold?: number;
  /** How long it stays open before a probe (1 to 86,400 s; default 30). */
  openSeconds?: number;
  /** Longest pause, reached by doubling after failed probes (1 to 86,400 s; default 600). */
  maxOpenSeconds?: number;
}

/** How fast and how much a target is sent to, and when it is judged broken. */
export interface PacingDefinition {
  /** Most attempts started per second, with a burst of one second's worth (> 0, up to 100,000; default unlimited). */
  ratePerSecond?: number;
  /**
   * Most attempts in flight at once (1 to 1,000; default 64), within `delivery.maxInFlight`
   * for the whole engine.
   */
  maxInFlight?: number;
  /** The circuit breaker's settings, or `false` for none. */
  circuitBreaker?: CircuitBreakerDefinition | false;
  /**
   * Disable the target once it has failed without a success for this long (60 s to 365
   * days; default `delivery.disableAfterFailingSeconds`, 432,000 = 5 days).
   */
  disableAfterFailingSeconds?: number;
}

export interface TargetDefinition {
  /** Unique within the rule: letters, digits, `.`, `_`, `-`; 1 to 64 characters. */
  id: string;
  webhook: WebhookEndpoint;
  /** Default `cloudevents-structured`; `transform` requires `transform`. */
  format?: TargetFormat;
  /** JSONata expression whose input is the CloudEvent; its output is the body. */
  transform?: string;
  retry?: RetryDefinition;
  /**
   * The connection whose authorization, headers and query parameters every request of the
   * target carries: one declared in a rule file's `connections:` or created through the API.
   */
  connection?: string;
  /** Rule files only: signing secrets of the target's requests. */
  signing?: SigningDefinition;
  /** Rate and in-flight limits, circuit breaker, automatic disabling. */
  pacing?: PacingDefinition;
}

export interface RuleDefinition {
  /** Unique within the bus: letters, digits, `.`, `_`, `-`; 1 to 64 characters. */
  name: string;
  description?: string;
  /** Default true. A disabled rule matches nothing. */
  enabled?: boolean;
  /** An EventBridge event pattern over the CloudEvent. */
  pattern: JsonObject;
  /** 0 to 5 targets. */
  targets?: TargetDefinition[];
}

/** One rule file. */
export interface RuleFile {
  /**
   * The bus these rules belong to; created if it does not exist. Optional only in a file that
   * declares connections and no rules.
   */
  bus?: string;
  description?: string;
  /**
   * A system bus, as a cloud service's own buses are: its publishes are metered like any
   * bus's and priced at 0. Default false.
   */
  system?: boolean;
  rules?: RuleDefinition[];
  /** Connections, global (any rule of any bus may use them); names unique across files and the API. */
  connections?: ConnectionDefinition[];
}

/**
 * Where a rule came from: a rule file (the file, the line of the rule's item and its JSON
 * pointer in the file, `/rules/0`), or the API.
 */
export type RuleOrigin =
  { kind: "file"; file: string; line: number; pointer: string } | { kind: "api" };

/** Bus and rule names: letters, digits, `.`, `_`, `-`, 1 to 64 characters. */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
