/**
 * What the broker's refusals mean for the RabbitMQ connectors: the AMQP 0-9-1 reply codes
 * they branch on, read off amqplib's errors in this one place, and which of them a retry
 * cannot fix.
 */

/** The AMQP 0-9-1 reply codes the connectors act on (spec section 1.9, "Constants"). */
export const AMQP_REPLY_CODES = {
  /** A mandatory message matched no binding and was returned. */
  NO_ROUTE: 312,
  /** Login refused, or the user may not use the exchange, queue or vhost. */
  ACCESS_REFUSED: 403,
  /** No such exchange or queue. */
  NOT_FOUND: 404,
  /** An exclusive queue owned by another connection. */
  RESOURCE_LOCKED: 405,
  /** The request cannot be honoured as made: message over the size limit, queue declared with other arguments, user_id mismatch. */
  PRECONDITION_FAILED: 406,
  /** The vhost does not exist or the user has no access to it. */
  NOT_ALLOWED: 530,
} as const;

/** Codes for which the same request is refused again however often it is retried. */
const PERMANENT_CODES: ReadonlySet<number> = new Set([
  AMQP_REPLY_CODES.ACCESS_REFUSED,
  AMQP_REPLY_CODES.NOT_FOUND,
  AMQP_REPLY_CODES.RESOURCE_LOCKED,
  AMQP_REPLY_CODES.PRECONDITION_FAILED,
  AMQP_REPLY_CODES.NOT_ALLOWED,
]);

/**
 * The reply code of a broker refusal, or undefined for anything else (a socket error, a
 * timeout). amqplib puts the code on errors from a channel or connection the broker closed;
 * during the opening handshake it gives only a message, so the code is read from the text
 * there: the one place that reads amqplib's messages, because it offers nothing else.
 */
export function amqpReplyCode(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as Error & { code?: unknown }).code;
  if (typeof code === "number") return code;
  // "Handshake terminated by server: 403 (ACCESS-REFUSED) with message ..." (login refused).
  const handshake = /^Handshake terminated by server: (\d{3}) /.exec(error.message);
  if (handshake?.[1] !== undefined) return Number(handshake[1]);
  // The broker answers connection.open on a vhost the user cannot use with a close
  // (530 NOT_ALLOWED), which amqplib reports as an unexpected frame without its code.
  if (error.message.startsWith("Expected ConnectionOpenOk; got <ConnectionClose"))
    return AMQP_REPLY_CODES.NOT_ALLOWED;
  return undefined;
}

/** Whether a refusal with this code will be repeated on retry (a configuration or permission problem). */
export function isPermanentRefusal(code: number | undefined): boolean {
  return code !== undefined && PERMANENT_CODES.has(code);
}
