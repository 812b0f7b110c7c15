/**
 * The names Relaybus gives to what it keeps in JetStream. Every name starts with the
 * configured prefix, so several installations can share one NATS cluster.
 *
 * - The log of bus `orders` is the stream `<PREFIX>_LOG_orders`; its events are published on
 *   `<PREFIX>.log.orders.<id>`, one subject per CloudEvent id, so that the latest event with an
 *   id is one lookup (`last_by_subj`) rather than a scan.
 * - `<PREFIX>.appended.<bus>` carries a bodiless note after each append, so that the other
 *   nodes learn of new events without reading the stream.
 * - `<PREFIX>_PARKED` (subject `<PREFIX>.parked`) queues deliveries parked while they retry.
 * - `<PREFIX>.holding.<work>.<bus>` asks the nodes which of them holds a claimed event of a
 *   bus's shared work (`dispatch`); a node holding it answers, the others stay silent.
 *
 * Bus names may hold `.` (a token separator in subjects, forbidden in stream names) and `_`;
 * both are escaped (`_` → `__`, `.` → `_d`), so the mapping is reversible and names never
 * collide. Event ids are arbitrary text: they become base64url, or a SHA-256 of themselves when
 * long, so a subject stays short and valid.
 */
import { createHash } from "node:crypto";

/** Ids up to this many UTF-8 bytes are kept whole in the subject; longer ones are hashed. */
const MAX_PLAIN_ID_BYTES = 96;

/** A bus name as one subject token or stream-name part. */
export function busToken(bus: string): string {
  return bus.replace(/_/g, "__").replace(/\./g, "_d");
}

/** The bus a {@link busToken} was made from. */
export function busFromToken(token: string): string {
  return token.replace(/_(_|d)/g, (_, escaped: string) => (escaped === "_" ? "_" : "."));
}

/** A CloudEvent id as one subject token. */
export function idToken(id: string): string {
  const bytes = Buffer.from(id, "utf8");
  if (bytes.length <= MAX_PLAIN_ID_BYTES) return `i${bytes.toString("base64url")}`;
  return `h${createHash("sha256").update(bytes).digest("base64url")}`;
}

/** Stream and subject names under one prefix. */
export interface JetStreamNames {
  /** `<PREFIX>_LOG_<bus>` */
  logStream(bus: string): string;
  /** The bus of a log stream's name, or undefined when the name is not one of ours. */
  busOfLogStream(stream: string): string | undefined;
  /** `<PREFIX>.log.<bus>.*`, the subjects of a bus's stream. */
  logSubjects(bus: string): string;
  /** `<PREFIX>.log.<bus>.<id>` */
  eventSubject(bus: string, id: string): string;
  /** `<PREFIX>.appended.<bus>` */
  appendedSubject(bus: string): string;
  /** `<PREFIX>.appended.*` */
  appendedWildcard: string;
  /** The bus of an appended note's subject, or undefined. */
  busOfAppendedSubject(subject: string): string | undefined;
  /** `<PREFIX>_PARKED`, the queue of parked deliveries. */
  parkedStream: string;
  /** `<PREFIX>.parked` */
  parkedSubject: string;
  /** `<PREFIX>.holding.<work>.<bus>` */
  holdingSubject(work: string, bus: string): string;
  /** `<PREFIX>.holding.<work>.*` */
  holdingWildcard(work: string): string;
  /** The bus of a holding question's subject, or undefined. */
  busOfHoldingSubject(work: string, subject: string): string | undefined;
}

export function jetStreamNames(prefix: string): JetStreamNames {
  const streamPrefix = `${prefix}_LOG_`;
  const appendedPrefix = `${prefix}.appended.`;
  const holdingPrefix = (work: string) => `${prefix}.holding.${work}.`;
  return {
    logStream: (bus) => `${streamPrefix}${busToken(bus)}`,
    busOfLogStream: (stream) => (stream.startsWith(streamPrefix) ? busFromToken(stream.slice(streamPrefix.length)) : undefined),
    logSubjects: (bus) => `${prefix}.log.${busToken(bus)}.*`,
    eventSubject: (bus, id) => `${prefix}.log.${busToken(bus)}.${idToken(id)}`,
    appendedSubject: (bus) => `${appendedPrefix}${busToken(bus)}`,
    appendedWildcard: `${appendedPrefix}*`,
    busOfAppendedSubject: (subject) =>
      subject.startsWith(appendedPrefix) ? busFromToken(subject.slice(appendedPrefix.length)) : undefined,
    parkedStream: `${prefix}_PARKED`,
    parkedSubject: `${prefix}.parked`,
    holdingSubject: (work, bus) => `${holdingPrefix(work)}${busToken(bus)}`,
    holdingWildcard: (work) => `${holdingPrefix(work)}*`,
    busOfHoldingSubject: (work, subject) =>
      subject.startsWith(holdingPrefix(work)) ? busFromToken(subject.slice(holdingPrefix(work).length)) : undefined,
  };
}
