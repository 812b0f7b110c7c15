/**
 * The HTTP source: an endpoint per stream that takes CloudEvents over HTTP (structured,
 * batched and binary mode) and any other JSON (wrapped in an event), and answers a request
 * once the stream's sink confirmed its events. The producer keeps the position: it retries
 * what was not answered 200, so the source saves none.
 */
import type { SourceDefinition } from "../connector.js";
import { serveEndpoint } from "./endpoint.js";

export interface HttpSourceConfig {
  /** Interface to listen on (default 127.0.0.1, loopback only). */
  host?: string;
  /** TCP port to listen on. */
  port: number;
  /** Path events are POSTed to (default /events). */
  path?: string;
  /** Largest request body (default 1,048,576 bytes). */
  maxBodyBytes?: number;
  /** When set, requests must carry `Authorization: Bearer <authToken>`. */
  authToken?: string;
}

export const DEFAULT_HTTP_HOST = "127.0.0.1";
export const DEFAULT_HTTP_PATH = "/events";
export const DEFAULT_MAX_BODY_BYTES = 1_048_576;

export const httpSource: SourceDefinition<HttpSourceConfig> = {
  name: "http",
  kind: "source",
  description:
    "An HTTP endpoint that takes CloudEvents (structured, batch, binary) or any JSON, and answers once the sink stored them",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["port"],
    properties: {
      host: {
        type: "string",
        minLength: 1,
        description: `Interface to listen on (default ${DEFAULT_HTTP_HOST}).`,
      },
      port: { type: "integer", minimum: 1, maximum: 65_535, description: "TCP port to listen on." },
      path: {
        type: "string",
        pattern: "^/[^?#]*$",
        description: `Path events are POSTed to (default ${DEFAULT_HTTP_PATH}).`,
      },
      maxBodyBytes: {
        type: "integer",
        minimum: 1,
        description: `Largest request body in bytes; larger ones get 413 (default ${DEFAULT_MAX_BODY_BYTES}).`,
      },
      authToken: {
        type: "string",
        minLength: 1,
        description: "When set, requests must carry Authorization: Bearer <authToken> (else 401).",
      },
    },
  },
  create(config, context) {
    const options = {
      host: config.host ?? DEFAULT_HTTP_HOST,
      port: config.port,
      path: config.path ?? DEFAULT_HTTP_PATH,
      maxBodyBytes: config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      authToken: config.authToken,
      maxBatchEvents: context.maxBatchEvents,
      clock: context.clock,
      logger: context.logger,
      signal: context.signal,
    };
    return {
      run: (handle) => serveEndpoint(options, handle),
      // run() closes the server before it settles; there is nothing else to release.
      async close() {},
    };
  },
};
