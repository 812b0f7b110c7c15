/**
 * The bus sink: publishes each batch to a Relaybus bus, as ingress does (the same checks,
 * metering and durability). The port classifies refusals: a missing bus or an invalid or
 * oversized event cannot succeed on a retry; a log that cannot store for now can.
 */
import { SinkError, type SinkDefinition } from "../connector.js";

export interface BusSinkConfig {
  bus: string;
}

export const busSink: SinkDefinition<BusSinkConfig> = {
  name: "bus",
  kind: "sink",
  description: "Publishes each batch to a Relaybus bus, durable when the batch is confirmed",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["bus"],
    properties: {
      bus: {
        type: "string",
        pattern: "^[A-Za-z0-9._-]{1,64}$",
        description: "The bus to publish to; it must exist.",
      },
    },
  },
  create(config, context) {
    return {
      async write(events) {
        try {
          await context.relaybus.publish(config.bus, events);
        } catch (error) {
          if (error instanceof SinkError) throw error;
          // The port promises SinkErrors; anything else is a fault of the moment, not of the events.
          throw new SinkError(`bus ${config.bus}: ${(error as Error).message}`, {
            retryable: true,
            cause: error,
          });
        }
      },
      async close() {},
    };
  },
};
