/**
 * Conformance harness of the schedule source: a fast rate schedule on a manual clock. The
 * origin makes its own events: `produce(n)` moves the clock on by n periods and returns the
 * ids of the fires that became due. The schedule is anchored by `startAt`, so the fires (and
 * their ids) are the same on every run, whatever the position.
 */
import type { SourceDefinition } from "../../../connectors/index.js";
import { scheduleSource } from "../../../connectors/schedule/index.js";
import type { Clock } from "../../../src/types.js";
import type { SourceHarness } from "../connector-harness.js";

const PERIOD_MS = 1_000;
/** The stream name source-conformance.test.ts gives every source: the ids carry it. */
const STREAM_NAME = "conformance";

export const sourceHarness: SourceHarness = {
  definition: scheduleSource as SourceDefinition<never>,
  async setUp() {
    const startMs = Date.UTC(2030, 0, 1);
    let nowMs = startMs;
    const clock: Clock = { nowMs: () => nowMs };
    return {
      config: {
        expression: "rate(1 second)",
        startAt: new Date(startMs + PERIOD_MS).toISOString(),
        event: { source: "conformance.schedule", type: "tick", data: { from: "harness" } },
      },
      invalidConfig: { expression: "rate(1 second)", missedRuns: "twice" },
      clock,
      async produce(events) {
        const ids: string[] = [];
        for (let i = 0; i < events.length; i++) {
          nowMs += PERIOD_MS;
          ids.push(`${STREAM_NAME}:${new Date(nowMs).toISOString()}`);
        }
        return { ids };
      },
      async close() {},
    };
  },
};
