/**
 * Schedules that publish to a bus, as rule files declare them under `schedules:` (the
 * EventBridge Scheduler part of Relaybus). The expression's own grammar and the time zone
 * are not expressible in JSON Schema: `parseScheduleExpression(expression, timezone)` of
 * connectors/schedule checks them, and the bus scheduler refuses a set that fails it.
 */
import { NAME_PATTERN } from "../rules/model.js";
import type { JsonValue } from "../types.js";

/** What a schedule does with fires missed while Relaybus was down. */
export type ScheduleMissedRuns = "skip" | "once";

/** One schedule: when it fires, and the event it publishes to which bus. */
export interface BusSchedule {
  /** Unique among schedules; letters, digits, `.`, `_`, `-`, 1 to 64 characters. Event ids start with it. */
  name: string;
  /** `cron(...)`, `rate(...)` or `at(...)`, as EventBridge Scheduler writes them. */
  expression: string;
  /** IANA time zone the expression is read in. Default "UTC". */
  timezone?: string;
  /** Fires missed while Relaybus was down: `skip` them (default), or publish the most recent `once`. */
  missedRuns?: ScheduleMissedRuns;
  /** The bus the events go to. */
  bus: string;
  /** The event each fire publishes; its `id` and `time` come from the fire. */
  event: { source: string; type: string; data?: JsonValue };
  /** Whether the schedule fires. Default true. */
  enabled?: boolean;
}

/** Identifier of the schedule schema. */
export const SCHEDULE_DEFINITION_SCHEMA_ID =
  "https://relaybus.dev/schemas/schedule-definition.json";

/** JSON Schema (draft-07) of one {@link BusSchedule}; every object is closed. */
export const SCHEDULE_DEFINITION_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: SCHEDULE_DEFINITION_SCHEMA_ID,
  title: "Relaybus schedule",
  type: "object",
  additionalProperties: false,
  required: ["name", "expression", "bus", "event"],
  properties: {
    name: {
      type: "string",
      pattern: NAME_PATTERN.source,
      description: "Letters, digits, '.', '_', '-'; 1 to 64 characters. Unique among schedules.",
    },
    expression: {
      type: "string",
      pattern: "^\\s*(cron|rate|at)\\(.*\\)\\s*$",
      description:
        "cron(minutes hours day-of-month month day-of-week year), rate(value minute(s)|hour(s)|day(s)|second(s)) " +
        "or at(yyyy-mm-ddThh:mm:ss)",
    },
    timezone: {
      type: "string",
      minLength: 1,
      description: 'IANA time zone name, such as Europe/Berlin (default "UTC").',
    },
    missedRuns: {
      enum: ["skip", "once"],
      description:
        "Fires missed while Relaybus was down: skip them (default), or publish the most recent once.",
    },
    bus: {
      type: "string",
      pattern: NAME_PATTERN.source,
      description: "The bus the events are published to.",
    },
    event: {
      type: "object",
      additionalProperties: false,
      required: ["source", "type"],
      properties: {
        source: { type: "string", minLength: 1, description: "The events' CloudEvents source." },
        type: { type: "string", minLength: 1, description: "The events' CloudEvents type." },
        data: { description: "The events' data, any JSON (default: none)." },
      },
    },
    enabled: { type: "boolean", description: "Whether the schedule fires (default true)." },
  },
} as const;
