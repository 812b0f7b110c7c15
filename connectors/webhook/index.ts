/**
 * The webhook sink: POSTs each event to a URL in CloudEvents structured mode. Rule targets
 * are delivered by src/delivery (with retries, dead letters and Standard Webhooks headers);
 * this sink is the same destination for event streams, which retry whole batches themselves.
 */
import { request } from "undici";
import { SinkError, type SinkDefinition } from "../connector.js";

export interface WebhookSinkConfig {
  url: string;
  headers?: Record<string, string>;
  /** Per-request timeout (default 10,000 ms). */
  timeoutMs?: number;
}

const RETRYABLE_STATUS = new Set([408, 429]);

export const webhookSink: SinkDefinition<WebhookSinkConfig> = {
  name: "webhook",
  kind: "sink",
  description: "POSTs each event to an HTTP(S) URL as a structured-mode CloudEvent",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["url"],
    properties: {
      url: { type: "string", pattern: "^https?://" },
      headers: { type: "object", additionalProperties: { type: "string" } },
      timeoutMs: { type: "integer", minimum: 1 },
    },
  },
  create(config, context) {
    const timeoutMs = config.timeoutMs ?? 10_000;
    return {
      async write(events) {
        for (const event of events) {
          let status: number;
          try {
            const response = await request(config.url, {
              method: "POST",
              headers: { ...config.headers, "content-type": "application/cloudevents+json" },
              body: JSON.stringify(event),
              headersTimeout: timeoutMs,
              bodyTimeout: timeoutMs,
              signal: context.signal,
            });
            status = response.statusCode;
            await response.body.dump();
          } catch (error) {
            throw new SinkError(`webhook ${config.url}: ${(error as Error).message}`, { retryable: true, cause: error });
          }
          if (status < 200 || status >= 300) {
            const retryable = status >= 500 || RETRYABLE_STATUS.has(status);
            throw new SinkError(`webhook ${config.url}: answered ${status}`, { retryable });
          }
        }
      },
      async close() {},
    };
  },
};
