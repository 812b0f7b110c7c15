/**
 * One attempt of one delivery, from request to record: the attempt's own headers (a fresh
 * `webhook-timestamp`, the signature over it, the target connection's authorization), the
 * send, the outcome's class, and what follows it under the delivery's retry policy.
 */
import { errorMessage } from "../errors.js";
import type { AttemptRecord, AttemptToRecord, Delivery } from "../log/log-engine.js";
import type { Clock } from "../types.js";
import { classifyOutcome, type SendResult } from "./classify-outcome.js";
import type { AuthorizedParts, RequestAuthorizer } from "./connection-authorizer.js";
import { webhookTimestamp } from "./format-payload.js";
import { decideNext, type RandomSource } from "./retry-policy.js";
import type { WebhookSigner } from "./sign-webhook.js";
import type { WebhookSender } from "./webhook-sender.js";

/** What {@link createAttemptRunner} needs. */
export interface AttemptRunnerOptions {
  sender: Pick<WebhookSender, "send">;
  clock: Clock;
  random: RandomSource;
  /** Signs each attempt with its target's active secrets; without one, requests go unsigned. */
  signer?: WebhookSigner;
  /** Adds each target's connection (authorization, headers, query) to its attempts. */
  authorizer?: RequestAuthorizer;
}

/** Runs attempts. */
export interface AttemptRunner {
  /** Sends `delivery` once and says how it went and what follows; never rejects. */
  run(delivery: Delivery): Promise<AttemptToRecord>;
}

/**
 * Each attempt refreshes `webhook-timestamp` (receivers reject stale timestamps, and a retry
 * may come hours later) while `webhook-id` stays the delivery id on every attempt. The
 * signature covers the timestamp, so it is computed per attempt, over the body exactly as
 * sent; it is never stored, so dead letters and redrives hold no signature. A connection's
 * headers and query parameters are added per attempt too, and never stored.
 */
export function createAttemptRunner(options: AttemptRunnerOptions): AttemptRunner {
  const { sender, clock, random, signer, authorizer } = options;

  /**
   * Adds the target's connection to the attempt: its headers into `headers`, its query
   * parameters onto the URL, which is returned; undefined when no connection applies. Throws
   * (or rejects) when authorization cannot be had. Synchronous unless a token is being
   * fetched: most targets have no connection, and an async function here cost every attempt
   * a promise and a turn of the microtask queue for nothing.
   */
  function authorize(
    delivery: Delivery,
    headers: Record<string, string>,
    nowMs: number,
  ): string | undefined | Promise<string | undefined> {
    if (authorizer === undefined) return undefined;
    const pending = authorizer.authorize(delivery, nowMs);
    if (pending instanceof Promise) return pending.then((parts) => withConnection(delivery.request.url, headers, parts));
    return withConnection(delivery.request.url, headers, pending);
  }

  function withConnection(url: string, headers: Record<string, string>, parts: AuthorizedParts | undefined): string | undefined {
    if (parts === undefined) return undefined;
    Object.assign(headers, parts.headers);
    const query = new URLSearchParams(parts.query).toString();
    return query === "" ? url : `${url}${url.includes("?") ? "&" : "?"}${query}`;
  }

  return {
    async run(delivery) {
      const number = delivery.attempts.length + 1;
      const startedAtMs = clock.nowMs();
      const timestamp = webhookTimestamp(startedAtMs);
      const headers: Record<string, string> = { ...delivery.request.headers, "webhook-timestamp": timestamp };
      const { body } = delivery.request;
      const signature = signer?.signature(delivery, headers["webhook-id"] ?? delivery.id, timestamp, body, startedAtMs);
      if (signature !== undefined) headers["webhook-signature"] = signature;
      let result: SendResult;
      let authorized = false;
      try {
        const pending = authorize(delivery, headers, startedAtMs);
        const connectionUrl = pending instanceof Promise ? await pending : pending;
        authorized = connectionUrl !== undefined;
        // Field by field: a spread of the request took V8's slow clone path on every attempt.
        result = await sender.send({
          url: connectionUrl ?? delivery.request.url,
          headers,
          body,
          timeoutMs: delivery.request.timeoutMs,
        });
      } catch (error) {
        // The sender reports network failures as results: this is a connection that could
        // not be authorized (its token endpoint is down, say), or a defect. Either way an
        // outcome, and one worth retrying.
        result = { error: errorMessage(error), errorKind: "connection", durationMs: clock.nowMs() - startedAtMs };
      }
      let classified = classifyOutcome(result);
      if (result.status === 401 && authorized) {
        // The connection's credentials were refused: an OAuth token revoked or expired early.
        // Forget it, and try once more with a new one before calling the failure permanent.
        authorizer?.unauthorized(delivery);
        if (delivery.attempts.at(-1)?.status !== 401) classified = { ...classified, outcome: "retryable" };
      }
      const next = decideNext({
        policy: delivery.retry,
        attempt: number,
        classified,
        nowMs: clock.nowMs(),
        eventReceivedAtMs: delivery.eventReceivedAtMs,
        random,
      });
      const attempt: AttemptRecord = {
        attempt: number,
        startedAtMs,
        durationMs: result.durationMs,
        outcome: classified.outcome,
      };
      if (result.status !== undefined) attempt.status = result.status;
      if (classified.error !== undefined) attempt.error = classified.error;
      return { deliveryId: delivery.id, attempt, next };
    },
  };
}
