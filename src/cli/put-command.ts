/**
 * `relaybus put`: publishes an event. From arguments it sends one CloudEvent in structured
 * mode; with `--file` it sends a PutEvents body (`{"Entries": [...]}`), one CloudEvent
 * (`{"specversion": ...}`) or a CloudEvents batch (a JSON array).
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { clientUrl } from "../config/load-config.js";
import { uuidV7 } from "../events/uuid-v7.js";
import { authorizationHeader } from "./api-client.js";

interface PutFlags {
  bus: string;
  source?: string;
  type?: string;
  subject?: string;
  data?: string;
  file?: string;
  url?: string;
  apiKey?: string;
}

export function registerPutCommand(program: Command): void {
  program
    .command("put")
    .description("publish an event (from flags) or events (from a file)")
    .option("-b, --bus <name>", "bus to publish to", "default")
    .option("-s, --source <source>", "event source, e.g. shop.orders")
    .option("-t, --type <type>", "event type, e.g. order.created")
    .option("--subject <subject>", "event subject")
    .option("-d, --data <json>", "event data, as JSON (a plain string is sent as a JSON string)")
    .option("-f, --file <file>", "a PutEvents body, a CloudEvent, or a JSON array of CloudEvents")
    .option("--url <url>", "server URL (also RELAYBUS_URL; default http://127.0.0.1:8080)")
    .option("--api-key <key>", "API key rb_... with publish on the bus (also RELAYBUS_API_KEY)")
    .action(async (flags: PutFlags) => {
      const base = clientUrl(flags.url);
      const request = flags.file === undefined ? fromFlags(flags) : fromFile(flags.file, flags.bus);
      const response = await fetch(`${base}${request.path}`, {
        method: "POST",
        headers: { "content-type": request.contentType, ...authorizationHeader(flags.apiKey) },
        body: request.body,
      }).catch((error: unknown) => {
        throw new Error(`cannot reach Relaybus at ${base}: ${(error as Error).cause ?? error}`);
      });
      const text = await response.text();
      console.log(prettyJson(text));
      const failed = !response.ok || /"FailedEntryCount":\s*[1-9]|"failedCount":\s*[1-9]/.test(text);
      if (failed) process.exitCode = 1;
    });
}

function fromFlags(flags: PutFlags) {
  if (flags.source === undefined || flags.type === undefined) {
    throw new Error("put: --source and --type are required (or give --file)");
  }
  const event: Record<string, unknown> = {
    specversion: "1.0",
    // Time-ordered, as the ids ingest gives PutEvents entries: the log's (bus, id) index grows at its end.
    id: uuidV7(),
    source: flags.source,
    type: flags.type,
    time: new Date().toISOString(),
  };
  if (flags.subject !== undefined) event.subject = flags.subject;
  if (flags.data !== undefined) {
    event.datacontenttype = "application/json";
    event.data = parseDataFlag(flags.data);
  }
  return cloudEventsRequest(flags.bus, "application/cloudevents+json", JSON.stringify(event));
}

function fromFile(file: string, bus: string) {
  const text = readFileSync(file, "utf8");
  const value = JSON.parse(text) as unknown;
  if (Array.isArray(value)) return cloudEventsRequest(bus, "application/cloudevents-batch+json", text);
  if (typeof value === "object" && value !== null && "Entries" in value) {
    return { path: "/v1/events", contentType: "application/json", body: text };
  }
  return cloudEventsRequest(bus, "application/cloudevents+json", text);
}

function cloudEventsRequest(bus: string, contentType: string, body: string) {
  return { path: `/v1/buses/${encodeURIComponent(bus)}/cloudevents`, contentType, body };
}

function parseDataFlag(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
