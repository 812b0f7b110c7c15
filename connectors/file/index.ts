/**
 * The file sink: appends each event as one line of JSON to a JSON-lines file, and confirms a
 * batch once its lines are on disk (fsync). A file cannot tell a retried batch from a new one
 * without reading itself back, so delivery is at least once: readers deduplicate on `id`.
 */
import type { SinkDefinition } from "../connector.js";
import type { CloudEvent, JsonValue } from "../../src/types.js";
import { appendLines } from "./append-lines.js";

/** What each line holds. */
export const FILE_FORMATS = ["cloudevent", "data"] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

export interface FileSinkConfig {
  /** The JSON-lines file; created with its missing directories. */
  path: string;
  /** `cloudevent` (default): the structured CloudEvent; `data`: only its data. */
  format?: FileFormat;
  /** fsync before confirming a batch (default true). */
  fsync?: boolean;
  /** Rotate the file to `<path>.<n>` before it would grow past this many bytes (default: never). */
  maxFileBytes?: number;
}

/** The line of one event, without its newline. */
function lineOf(event: CloudEvent, format: FileFormat): string {
  if (format === "cloudevent") return JSON.stringify(event);
  // Binary data has no JSON form but its base64 text; an event without data is `null`.
  const data: JsonValue = event.data ?? event.data_base64 ?? null;
  return JSON.stringify(data);
}

export const fileSink: SinkDefinition<FileSinkConfig> = {
  name: "file",
  kind: "sink",
  description:
    "Appends each event as one JSON line to a file (JSON lines), fsynced before the batch is confirmed",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["path"],
    properties: {
      path: {
        type: "string",
        minLength: 1,
        description: "The JSON-lines file; missing directories are created.",
      },
      format: {
        enum: [...FILE_FORMATS],
        description:
          "cloudevent (default): each line is the structured CloudEvent; data: only the event's data.",
      },
      fsync: {
        type: "boolean",
        description: "fsync each batch before confirming it (default true).",
      },
      maxFileBytes: {
        type: "integer",
        minimum: 1,
        description:
          "Rotate to <path>.1, <path>.2, ... (oldest first) before the file would pass this size; default: never.",
      },
    },
  },
  create(config) {
    const format = config.format ?? "cloudevent";
    const options = {
      path: config.path,
      fsync: config.fsync ?? true,
      maxFileBytes: config.maxFileBytes,
      mayBeTorn: true,
    };
    // Writes run one at a time, in call order: two batches appended at once could land in
    // either order, and a rotation could split them.
    let previous: Promise<unknown> = Promise.resolve();
    return {
      write(events) {
        if (events.length === 0) return Promise.resolve();
        let text = "";
        for (const event of events) text += `${lineOf(event, format)}\n`;
        const written = previous
          .catch(() => {})
          .then(() => appendLines(text, options))
          .then(
            () => void (options.mayBeTorn = false),
            (error: unknown) => {
              options.mayBeTorn = true;
              throw error;
            },
          );
        previous = written;
        return written;
      },
      async close() {},
    };
  },
};
