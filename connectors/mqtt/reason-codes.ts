/**
 * How MQTT failures are classified, once, for both connectors: whether a retry may succeed.
 * MQTT 5 says why it refuses with a reason code (CONNACK, PUBACK, PUBREC, SUBACK, DISCONNECT);
 * MQTT 3.1.1 has only the CONNACK return codes 1 to 5. mqtt.js puts either on the error's
 * numeric `code`; socket errors carry a string code (`ECONNREFUSED`) instead.
 */
import { ReasonCodes } from "mqtt";

/**
 * Codes a retry cannot fix: the broker refuses who we are, what we send or where we send it,
 * until someone changes the configuration on one side. Every other code (unspecified and
 * implementation-specific errors, server unavailable or busy, quota exceeded, rate too high,
 * session taken over, administrative action, keep-alive timeout, ...) and every failure
 * without a code (refused connection, timeout, lost connection) is worth retrying.
 */
const PERMANENT_REASON_CODES: ReadonlySet<number> = new Set([
  // MQTT 3.1.1 CONNACK return codes (3, server unavailable, is retryable).
  0x01, // unacceptable protocol version
  0x02, // identifier rejected
  0x04, // bad user name or password
  0x05, // not authorized
  // MQTT 5 reason codes.
  0x81, // malformed packet
  0x82, // protocol error
  0x84, // unsupported protocol version
  0x85, // client identifier not valid
  0x86, // bad user name or password
  0x87, // not authorized
  0x8a, // banned
  0x8c, // bad authentication method
  0x8f, // topic filter invalid
  0x90, // topic name invalid
  0x95, // packet too large
  0x99, // payload format invalid
  0x9a, // retain not supported
  0x9b, // QoS not supported
  0x9c, // use another server
  0x9d, // server moved
  0x9e, // shared subscriptions not supported
  0xa1, // subscription identifiers not supported
  0xa2, // wildcard subscriptions not supported
]);

/** The MQTT reason code an mqtt.js error carries, if it carries one. */
export function reasonCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Whether a retry may succeed after `error` (an mqtt.js error, or any other). */
export function isRetryableMqttError(error: unknown): boolean {
  const code = reasonCodeOf(error);
  return code === undefined || !PERMANENT_REASON_CODES.has(code);
}

/** `Not authorized (0x87)`: a reason code as people read it in logs. */
export function describeReasonCode(code: number): string {
  const name = (ReasonCodes as Record<number, string | undefined>)[code] ?? "Unknown reason";
  return `${name} (0x${code.toString(16).padStart(2, "0")})`;
}
