/** Reads a request body into one Buffer, refusing bodies over a limit before buffering them. */
import type { IncomingMessage } from "node:http";
import { RelaybusError } from "../errors.js";

/**
 * Resolves with the whole body. Rejects with `PayloadTooLarge` as soon as the declared
 * `content-length` or the bytes received exceed `maxBytes` (the rest is not buffered).
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.reject(tooLarge(declared, maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      received += chunk.length;
      if (received > maxBytes) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge(received, maxBytes));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!failed) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    });
    req.on("error", (error) => {
      if (!failed) {
        failed = true;
        reject(new RelaybusError("ValidationError", `request body could not be read: ${error.message}`));
      }
    });
  });
}

function tooLarge(bytes: number, maxBytes: number): RelaybusError {
  return new RelaybusError(
    "PayloadTooLarge",
    `request body: ${bytes} bytes is over the limit of ${maxBytes} bytes (limits.maxRequestBytes)`,
    { details: { maxBytes } },
  );
}
