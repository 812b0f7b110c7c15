/**
 * The main thread's handle on the log checkpointer thread (see log-checkpointer-worker.ts):
 * it asks for a checkpoint once enough bytes were committed since the last request. The
 * thread never keeps the process alive on its own.
 */
import type { Logger } from "../../types.js";
import type { CheckpointerConfig, FromCheckpointer } from "./log-checkpointer-protocol.js";
import { startWorker } from "../../start-worker.js";

export interface LogCheckpointer {
  /** Counts committed bytes; asks for a checkpoint each time `afterBytes` more were committed. */
  committed(bytes: number): void;
  /** Lets a checkpoint in progress finish, then ends the thread. */
  close(): Promise<void>;
}

export function startLogCheckpointer(
  config: CheckpointerConfig & { afterBytes: number },
  logger: Logger,
): LogCheckpointer {
  const { afterBytes, ...workerConfig } = config;
  const worker = startWorker(new URL("./log-checkpointer-worker", import.meta.url), workerConfig);
  worker.unref();
  let alive = true;
  const exited = new Promise<void>((resolve) =>
    worker.once("exit", () => {
      alive = false;
      resolve();
    }),
  );
  worker.on("message", (message: FromCheckpointer) => {
    logger.warn("log checkpointer could not open the log; the WAL will grow until restart", { error: message.message });
  });
  worker.on("error", (error) => {
    logger.warn("log checkpointer stopped; the WAL will grow until restart", { error: String(error) });
  });
  let sinceRequest = 0;
  let closing: Promise<void> | undefined;

  return {
    committed(bytes) {
      sinceRequest += bytes;
      if (sinceRequest < afterBytes || !alive || closing !== undefined) return;
      sinceRequest = 0;
      worker.postMessage({ type: "checkpoint" });
    },
    close() {
      closing ??= (async () => {
        if (!alive) return;
        worker.ref();
        worker.postMessage({ type: "close" });
        await exited;
      })();
      return closing;
    },
  };
}
