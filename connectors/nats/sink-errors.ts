/**
 * The one place the NATS sink decides whether a failure is worth retrying. It branches on
 * the client's error codes and on JetStream's API error codes, never on message text.
 */
import { ErrorCode, NatsError } from "nats";
import { SinkError } from "../connector.js";

/** Client errors a retry cannot fix: the server refused who we are or what we sent. */
const PERMANENT_CLIENT_CODES: ReadonlySet<string> = new Set([
  ErrorCode.AuthorizationViolation,
  ErrorCode.AuthenticationExpired,
  ErrorCode.AccountExpired,
  ErrorCode.BadAuthentication,
  ErrorCode.PermissionsViolation,
  ErrorCode.BadSubject,
  ErrorCode.BadHeader,
  ErrorCode.MaxPayloadExceeded,
  ErrorCode.InvalidOption,
]);

/** JetStream answers below 500 that still may pass later (the HTTP meaning of 408 and 429). */
const RETRYABLE_API_STATUS: ReadonlySet<number> = new Set([408, 429]);

/**
 * Turns whatever a connect or publish threw into a {@link SinkError}:
 * - no responders (503 without a JetStream answer): no stream captures the subject; permanent;
 * - a JetStream refusal: permanent for 4xx (message too large, wrong expectations), retryable
 *   for 5xx (stream full with discard-new, storage failure), as its status says;
 * - refused credentials or permissions, a bad subject, a payload over the server's limit: permanent;
 * - anything else (timeouts, lost or refused connections, draining): retryable.
 */
export function classifyNatsSinkError(error: unknown, subject: string): SinkError {
  const where = `nats subject ${subject}`;
  if (error instanceof SinkError) return error;
  if (!(error instanceof NatsError)) {
    return new SinkError(`${where}: ${String(error)}`, { retryable: true, cause: error });
  }
  const apiError = error.jsError();
  if (apiError !== null) {
    const retryable = apiError.code >= 500 || RETRYABLE_API_STATUS.has(apiError.code);
    return new SinkError(
      `${where}: JetStream refused the message: ${apiError.description} (${apiError.err_code ?? apiError.code})`,
      {
        retryable,
        cause: error,
      },
    );
  }
  if (error.code === ErrorCode.NoResponders) {
    return new SinkError(
      `${where}: no JetStream stream captures this subject; create one (e.g. nats stream add --subjects '${subject}')`,
      {
        retryable: false,
        cause: error,
      },
    );
  }
  const retryable = !PERMANENT_CLIENT_CODES.has(error.code);
  return new SinkError(`${where}: ${error.message} (${error.code})`, { retryable, cause: error });
}
