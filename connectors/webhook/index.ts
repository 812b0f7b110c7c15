/**
 * The webhook sink: POSTs each event to a URL in CloudEvents structured mode, or a whole batch
 * in one request in CloudEvents batched mode. Rule targets are delivered by src/delivery (with
 * retries, dead letters and Standard Webhooks headers); this sink is the same destination for
 * event streams, which retry whole batches themselves.
 */
import { request } from "undici";
import { SinkError, type SinkDefinition } from "../connector.js";

/** How a batch goes out: one request per event, or one request for the whole batch. */
export const WEBHOOK_MODES = ["single", "batch"] as const;
export type WebhookMode = (typeof WEBHOOK_MODES)[number];

export interface WebhookSinkConfig {
  url: string;
  headers?: Record<string, string>;
  /** Per-request timeout (default 10,000 ms). */
  timeoutMs?: number;
  /**
   * `single` (default): each event in its own structured-mode request, in order; `batch`: the
   * whole batch as one `application/cloudevents-batch+json` request (a JSON array).
   */
  mode?: WebhookMode;
}

/** The code of the error Relaybus's dispatcher fails a connection with when its outbound policy refuses the address. */
const BLOCKED_ADDRESS_CODE = "RELAYBUS_BLOCKED_ADDRESS";

const RETRYABLE_STATUS = new Set([408, 429]);
const STRUCTURED_TYPE = "application/cloudevents+json";
const BATCH_TYPE = "application/cloudevents-batch+json";

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
      mode: {
        enum: [...WEBHOOK_MODES],
        description:
          "single (default): one structured-mode request per event, in order; batch: the whole batch in one application/cloudevents-batch+json request.",
      },
    },
  },
  create(config, context) {
    const timeoutMs = config.timeoutMs ?? 10_000;
    /** One POST; resolves on a 2xx answer, else rejects with a classified SinkError. */
    const post = async (contentType: string, body: string): Promise<void> => {
      let status: number;
      try {
        const response = await request(config.url, {
          method: "POST",
          headers: { ...config.headers, "content-type": contentType },
          body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: context.signal,
          ...(context.httpDispatcher === undefined ? {} : { dispatcher: context.httpDispatcher }),
        });
        status = response.statusCode;
        await response.body.dump();
      } catch (error) {
        // The outbound policy refusing the address (its dispatcher's stable code): trying again cannot help.
        const blocked = (error as { code?: unknown }).code === BLOCKED_ADDRESS_CODE;
        throw new SinkError(`webhook ${config.url}: ${(error as Error).message}`, { retryable: !blocked, cause: error });
      }
      if (status < 200 || status >= 300) {
        const retryable = status >= 500 || RETRYABLE_STATUS.has(status);
        throw new SinkError(`webhook ${config.url}: answered ${status}`, { retryable });
      }
    };
    return {
      async write(events) {
        if (config.mode === "batch") {
          if (events.length > 0) await post(BATCH_TYPE, JSON.stringify(events));
          return;
        }
        for (const event of events) await post(STRUCTURED_TYPE, JSON.stringify(event));
      },
      async close() {},
    };
  },
};
