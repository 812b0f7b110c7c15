/**
 * Shared types, and the words of the domain.
 *
 * - **event**: one CloudEvents 1.0 event ({@link CloudEvent}). An AWS `PutEvents` entry is
 *   mapped to one on ingress; inside Relaybus there is only this one model.
 * - **bus**: a named, ordered log of events. `default` always exists.
 * - **offset**: an event's position in its bus, an integer starting at 1, gap-free.
 * - **rule**: a named EventBridge event pattern on a bus, with up to 5 targets.
 * - **pattern**: the EventBridge event-pattern language; it decides whether a rule matches.
 * - **target**: where a matching event goes (a webhook for now), in a chosen format,
 *   optionally reshaped by a JSONata transform.
 * - **delivery**: one event bound for one target; it is attempted until it succeeds,
 *   fails permanently, or runs out of attempts or age, and then it is dead-lettered.
 * - **attempt**: one try of a delivery (one HTTP request), with its outcome.
 * - **dead letter**: a delivery that ended without success, kept with its payload and attempts.
 * - **size**: the UTF-8 byte length of an event's structured JSON form.
 * - **unit**: the billing unit, `ceil(size / 65536)` and at least 1.
 * - **stream**, **CU**, **meter**: event streams, capacity units and usage meters (later issues).
 */

/** Any value JSON can carry. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * A CloudEvents 1.0 event, the one event model inside Relaybus.
 * Extension attributes sit beside the context attributes, as in the structured JSON form.
 * `data` holds JSON data (or a string for non-JSON text); `data_base64` holds binary data.
 */
export interface CloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string;
  datacontenttype?: string;
  dataschema?: string;
  data?: JsonValue;
  data_base64?: string;
  [extension: string]: JsonValue | undefined;
}

/** An event ready to append: the event, its bus, and what ingress computed once for it. */
export interface EventToAppend {
  bus: string;
  event: CloudEvent;
  /** The structured JSON form, exactly as stored and as sized. */
  json: string;
  /** UTF-8 byte length of `json`. */
  sizeBytes: number;
  /** Billable 64 KB units: `ceil(sizeBytes / 65536)`, at least 1. */
  units: number;
}

/** An event as it sits in the log. */
export interface StoredEvent extends EventToAppend {
  /** Position in the bus, from 1. */
  offset: number;
  /** When the log accepted the event, ms since the epoch. */
  receivedAtMs: number;
}

/**
 * How a target receives an event: CloudEvents binary mode (`ce-` headers, data as body) or
 * structured mode (the whole event as JSON), the AWS EventBridge envelope, the bare data, or
 * the output of the target's JSONata transform.
 */
export const TARGET_FORMATS = [
  "cloudevents-binary",
  "cloudevents-structured",
  "aws",
  "data",
  "transform",
] as const;
export type TargetFormat = (typeof TARGET_FORMATS)[number];

/** A clock, injected where time matters so that tests need not patch timers. */
export interface Clock {
  nowMs(): number;
}

/** The wall clock. */
export const systemClock: Clock = { nowMs: () => Date.now() };

/** A small logger; the service's own is a thin wrapper over the console. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that writes one line per message to stderr, with fields as JSON. */
export function createConsoleLogger(options: { quiet?: boolean } = {}): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    if (options.quiet && level === "info") return;
    const suffix = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
    process.stderr.write(`${new Date().toISOString()} ${level} ${message}${suffix}\n`);
  };
  return {
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

/** A logger that discards everything (tests, benchmarks). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
