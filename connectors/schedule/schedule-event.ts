/**
 * The event of one fire. Its id is derived from the stream and the fire time only, so a fire
 * handed over again after a crash (at least once) carries the same id and deduplicates.
 */
import type { CloudEvent, JsonValue } from "../../src/types.js";

/** Default `source` of scheduled events. */
export const DEFAULT_SCHEDULE_EVENT_SOURCE = "relaybus.scheduler";
/** Default `type` of scheduled events: EventBridge's detail-type of scheduled events. */
export const DEFAULT_SCHEDULE_EVENT_TYPE = "Scheduled Event";

/** What a schedule puts in its events. */
export interface ScheduleEventTemplate {
  /** Default "relaybus.scheduler". */
  source?: string;
  /** Default "Scheduled Event". */
  type?: string;
  /** The event's `data`, any JSON; absent, the event carries no data. */
  data?: JsonValue;
}

/** The fire time as the position and the id use it: ISO 8601 in UTC, to the millisecond. */
export function fireTimeIso(fireMs: number): string {
  return new Date(fireMs).toISOString();
}

/**
 * The CloudEvent of the fire at `fireMs` of the stream `streamName`:
 * `id` `<streamName>:<fire time ISO>`, `time` the fire time (not the time it was handed over).
 */
export function scheduleEvent(
  streamName: string,
  fireMs: number,
  template: ScheduleEventTemplate = {},
): CloudEvent {
  const time = fireTimeIso(fireMs);
  const event: CloudEvent = {
    specversion: "1.0",
    id: `${streamName}:${time}`,
    source: template.source ?? DEFAULT_SCHEDULE_EVENT_SOURCE,
    type: template.type ?? DEFAULT_SCHEDULE_EVENT_TYPE,
    time,
  };
  if (template.data !== undefined) {
    event.datacontenttype = "application/json";
    event.data = template.data;
  }
  return event;
}
