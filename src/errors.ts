/**
 * The one error type of Relaybus, and the one table from its codes to HTTP statuses.
 * Codes are stable strings: they only grow, never get renamed. Branch on `code`, never on
 * `message`.
 */

/** Every error code, with the HTTP status it answers with. */
export const ERROR_STATUS = {
  /** The request body is not valid JSON. */
  InvalidJson: 400,
  /** The Content-Type is not one this route accepts. */
  UnsupportedMediaType: 415,
  /** A field is missing, of the wrong type, or out of range; the message names it. */
  ValidationError: 400,
  /** A PutEvents entry's `Detail` is not a JSON object. */
  MalformedDetail: 400,
  /** An event is larger than `limits.maxEventBytes`. */
  EventTooLarge: 413,
  /** A request carries more entries than `limits.maxEntriesPerRequest`. */
  TooManyEntries: 400,
  /** A JSON document nests deeper than `limits.maxJsonDepth`. */
  JsonTooDeep: 400,
  /** The request body is larger than `limits.maxRequestBytes`. */
  PayloadTooLarge: 413,
  /** A JSON object has more keys than `limits.maxJsonKeysPerObject`. */
  JsonTooManyKeys: 400,
  /** An event pattern is larger than `limits.maxPatternBytes`. */
  EventPatternTooLarge: 400,
  /**
   * An event pattern asks for more matching work than the `limits.maxPattern*` complexity
   * limits allow (fields, `$or` alternatives, wildcard score, regex operators, values in a
   * list, nesting).
   */
  EventPatternTooComplex: 400,
  /** A JSONata transform is larger than `limits.maxTransformBytes`. */
  TransformTooLarge: 400,
  /**
   * A JSONata evaluation ran past `transform.timeoutMs`. It is met per event (a dry run's
   * target, a dead letter's reason), never as the answer to a request; 400 as the transform's
   * other codes, since it is the expression, not the service, that needs changing.
   */
  TransformTimeout: 400,
  /** A rule has more targets than `limits.maxTargetsPerRule`. */
  TooManyTargets: 400,
  /** The bus holds `limits.maxRulesPerBus` rules already; delete one first. */
  TooManyRules: 409,
  /** There are `limits.maxStreams` streams already (rule files and API together). */
  TooManyStreams: 409,
  /**
   * Publishing faster than the bus's (`limits.publishRatePerBus`) or the API key's
   * (`ratePerSecond`) rate; `Retry-After` says when to try again.
   */
  RateLimited: 429,
  /** An event pattern is not valid; the message names the offending part. */
  InvalidEventPattern: 400,
  /** A JSONata transform does not compile, or its evaluation fails. */
  InvalidTransform: 400,
  /** A rule or target definition is not valid. */
  InvalidRule: 400,
  /** The bus does not exist. */
  BusNotFound: 404,
  /** A bus with that name already exists. */
  BusAlreadyExists: 409,
  /** The bus still has rules; delete them first or pass `force=true`. */
  BusHasRules: 409,
  /** The bus cannot be deleted (`default`). */
  BusProtected: 409,
  /** The rule does not exist on that bus. */
  RuleNotFound: 404,
  /** A rule with that name already exists on the bus. */
  RuleAlreadyExists: 409,
  /** The rule comes from a rule file; change the file instead. */
  RuleManagedByFile: 409,
  /** A stream definition is not valid; the message names the field (connector configs included). */
  InvalidStream: 400,
  /** No stream has that name. */
  StreamNotFound: 404,
  /** A stream with that name already exists. */
  StreamAlreadyExists: 409,
  /** No schedule has that name. */
  ScheduleNotFound: 404,
  /** The stream is paused or failed: resume it first (a dead-letter redrive needs it running). */
  StreamNotRunning: 409,
  /** The stream comes from a rule file; change the file instead. */
  StreamManagedByFile: 409,
  /** A reload of the rule files found errors; the running rules stay. */
  RulesReloadFailed: 400,
  /** The event is not in the log of that bus (never published, or past retention). */
  EventNotFound: 404,
  /** Events with that id are on several buses; name one (`?bus=`). */
  EventIdAmbiguous: 409,
  /** The dead letter does not exist. */
  DeadLetterNotFound: 404,
  /** The rule has no target with that id. */
  TargetNotFound: 404,
  /** The target has no signing secret with that id (never created, revoked, or expired and pruned). */
  SecretNotFound: 404,
  /** A connection definition is not valid (its shape, a reserved header, an unset `env:` variable). */
  InvalidConnection: 400,
  /** No connection has that name (in the rule files or created through the API). */
  ConnectionNotFound: 404,
  /** The connection comes from a rule file; change the file instead. */
  ConnectionManagedByFile: 409,
  /** Rules' targets use the connection; change them first or pass `force=true`. */
  ConnectionInUse: 409,
  /** The archive does not exist. */
  ArchiveNotFound: 404,
  /** An archive with that name already exists. */
  ArchiveAlreadyExists: 409,
  /** The replay does not exist. */
  ReplayNotFound: 404,
  /** A replay with that name exists (replay names are never reused). */
  ReplayAlreadyExists: 409,
  /** The billing period has not begun (a future month): it has no records, not even a preview. */
  BillingPeriodNotFound: 404,
  /** The billing period has not ended (the current or a future month), so it cannot be closed. */
  BillingPeriodNotEnded: 409,
  /** A usage report would have more rows than its limit (10,000); narrow it and ask again. */
  UsageReportTooLarge: 400,
  /**
   * No credentials, or credentials that do not open the door: an unknown, malformed, expired
   * or revoked API key, or a SigV4 signature that does not verify. The message says which.
   */
  Unauthorized: 401,
  /** The API key is valid but lacks the scope the route needs; the message names the scope. */
  Forbidden: 403,
  /** No API key has that id. */
  KeyNotFound: 404,
  /** No audit log entry has that id (never made, or deleted by `audit.retentionDays`). */
  AuditEntryNotFound: 404,
  /** No route has that path. */
  RouteNotFound: 404,
  /** The route exists but not with that method. */
  MethodNotAllowed: 405,
  /** The configuration is not valid (start-up only). */
  InvalidConfig: 500,
  /** The service cannot take the request now (storage full or unavailable); retry later. */
  ServiceUnavailable: 503,
  /** An unexpected failure; the event was not acknowledged. */
  InternalError: 500,
} as const;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** The error type of Relaybus: a stable `code`, a message naming the field, and details. */
export class RelaybusError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RelaybusError";
    this.code = code;
    this.details = options.details;
  }

  /** The HTTP status this error answers with. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** True when `value` is a {@link RelaybusError}, optionally with the given code. */
export function isRelaybusError(value: unknown, code?: ErrorCode): value is RelaybusError {
  return value instanceof RelaybusError && (code === undefined || value.code === code);
}

/** Wraps anything thrown into a {@link RelaybusError} (unknown errors become InternalError). */
export function toRelaybusError(value: unknown): RelaybusError {
  if (value instanceof RelaybusError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new RelaybusError("InternalError", `internal error: ${message}`, { cause: value });
}

/** The message of anything thrown: an Error's message, or the value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
