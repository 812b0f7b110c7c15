/**
 * A target's request for one event, built the one way every path builds it: the dispatcher
 * (what gets delivered), a rule's dry run (what would be) and a dead letter's redrive in
 * `current` mode (what would be now). First the target's transform, when its format asks for
 * one, within a deadline; then the format. Each step that fails gives the reason the
 * dispatcher dead-letters with, so all three paths say the same thing about the same problem.
 *
 * @module
 */

import { errorMessage, RelaybusError, type ErrorCode } from "../errors.js";
import type { DeliveryRequest, NewDelivery } from "../log/log-engine.js";
import type { JsonValue, StoredEvent } from "../types.js";
import { formatRequest, structuredFallbackRequest, type FormatOptions } from "./format-payload.js";
import type { RoutedTarget } from "./router.js";

/**
 * A step's result: its value, or why there is none, with the error code when the failure has
 * one (a transform's `InvalidTransform` or `TransformTimeout`).
 */
export type Built<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string; readonly code?: ErrorCode };

/**
 * The target's transform applied to the event, when its format is `transform`. The
 * transform's own budget is `timeoutMs`; the deadline (twice that, plus 100 ms) also bounds a
 * transform that stops yielding to its budget check.
 */
export function transformForTarget(
  target: RoutedTarget,
  event: StoredEvent,
  timeoutMs: number,
): Promise<Built<JsonValue | undefined>> {
  if (target.transform === undefined) {
    return Promise.resolve({
      ok: false,
      reason: "format is transform but the target has no transform",
    });
  }
  const deadlineMs = timeoutMs * 2 + 100;
  const evaluation = target.transform.evaluate(event.event as unknown as JsonValue, timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new RelaybusError("TransformTimeout", `transform did not settle within ${deadlineMs} ms`)),
      deadlineMs,
    );
  });
  return Promise.race([evaluation, deadline])
    .then(
      (value): Built<JsonValue | undefined> => ({ ok: true, value }),
      (error: unknown): Built<JsonValue | undefined> => transformFailure(error),
    )
    .finally(() => clearTimeout(timer));
}

/**
 * "transform failed: why", once: the transform's own errors already say it. A timeout's
 * reason ends in its code, `(TransformTimeout)`: a dead letter keeps only the reason, and so
 * it can be told from a failing expression, and selected (`reason=TransformTimeout`).
 */
function transformFailure(error: unknown): { ok: false; reason: string; code?: ErrorCode } {
  const message = errorMessage(error);
  const reason = message.startsWith("transform failed: ") ? message : `transform failed: ${message}`;
  if (!(error instanceof RelaybusError)) return { ok: false, reason };
  const suffix = error.code === "TransformTimeout" ? " (TransformTimeout)" : "";
  return { ok: false, reason: reason + suffix, code: error.code };
}

/** The request in the target's format, `transformed` being the transform's output (format `transform`). */
export function formatForTarget(
  event: StoredEvent,
  target: RoutedTarget,
  deliveryId: string,
  nowMs: number,
  transformed: JsonValue | undefined,
  options: FormatOptions,
): Built<DeliveryRequest> {
  try {
    return {
      ok: true,
      value: formatRequest({ event, target, deliveryId, nowMs, transformed }, options),
    };
  } catch (error) {
    return { ok: false, reason: `cannot format for ${target.format}: ${errorMessage(error)}` };
  }
}

/** Both steps, for callers that are asynchronous anyway (dry run, redrive). */
export async function buildTargetRequest(
  event: StoredEvent,
  target: RoutedTarget,
  options: { deliveryId: string; nowMs: number; transformTimeoutMs: number; format: FormatOptions },
): Promise<Built<DeliveryRequest>> {
  let transformed: JsonValue | undefined;
  if (target.format === "transform") {
    const result = await transformForTarget(target, event, options.transformTimeoutMs);
    if (!result.ok) return result;
    transformed = result.value;
  }
  return formatForTarget(
    event,
    target,
    options.deliveryId,
    options.nowMs,
    transformed,
    options.format,
  );
}

/** What {@link buildDelivery} needs besides the event and the target. */
export interface BuildDeliveryOptions {
  /** Budget of one transform evaluation (`transform.timeoutMs`). */
  transformTimeoutMs: number;
  format: FormatOptions;
  /**
   * Takes a delivery that could not be built (its transform failed, or its format cannot carry
   * the event), with the event in structured form as its request since the request proper never
   * existed, and the reason: the caller dead-letters it.
   */
  deadLetter(delivery: NewDelivery, reason: string): void;
  /**
   * Mark a delivery whose body is the log's own JSON of the event (`NewDelivery.bodyIsEvent`),
   * so that the store keeps a reference instead of a copy. Set by the dispatcher's batches.
   */
  markBodyIsEvent?: boolean;
}

/**
 * `base` with `request`, built field by field with `bodyIsEvent` in the literal: a spread copy
 * of `base`, or the flag added afterwards, put the deliveries on maps V8 kept migrating, and
 * every later read of their fields on the dispatcher's hot path (handing over, sealing,
 * storing) missed the inline caches. A field added to NewDelivery must be added here (and in
 * the engine's `heldDelivery`).
 */
function withRequest(base: Omit<NewDelivery, "request">, request: DeliveryRequest, bodyIsEvent: boolean): NewDelivery {
  const delivery: NewDelivery = {
    id: base.id,
    bus: base.bus,
    offset: base.offset,
    eventId: base.eventId,
    rule: base.rule,
    targetId: base.targetId,
    retry: base.retry,
    eventReceivedAtMs: base.eventReceivedAtMs,
    createdAtMs: base.createdAtMs,
    request,
    bodyIsEvent,
  };
  if (base.orderKey !== undefined) delivery.orderKey = base.orderKey;
  return delivery;
}

/**
 * The delivery of one event to one target: `base` with the target's request, or undefined
 * when it could not be built and went to `options.deadLetter` instead. Synchronous unless the
 * target has a transform, so that plain targets cost no promise (the dispatcher's hot path).
 */
export function buildDelivery(
  base: Omit<NewDelivery, "request">,
  stored: StoredEvent,
  target: RoutedTarget,
  nowMs: number,
  options: BuildDeliveryOptions,
): NewDelivery | Promise<NewDelivery | undefined> | undefined {
  const failed = (reason: string): undefined => {
    const request = structuredFallbackRequest({
      event: stored,
      target,
      deliveryId: base.id,
      nowMs,
    });
    options.deadLetter({ ...base, request }, reason);
    return undefined;
  };
  const format = (transformed?: JsonValue): NewDelivery | undefined => {
    const built = formatForTarget(stored, target, base.id, nowMs, transformed, options.format);
    if (!built.ok) return failed(built.reason);
    return withRequest(base, built.value, options.markBodyIsEvent === true && built.value.body === stored.json);
  };
  if (target.format !== "transform") return format();
  return transformForTarget(target, stored, options.transformTimeoutMs).then((result) =>
    result.ok ? format(result.value) : failed(result.reason),
  );
}
