/**
 * Starts the log writer thread and speaks to it from the main thread: appends go out as
 * messages, commits and failures come back to the handlers, prune and pragma requests get a
 * promise. The thread is kept referenced only while something awaits it, so an idle storage
 * does not keep the process alive, but a pending append does.
 *
 * The worker loads from `dist/` and from `src/` alike: see src/start-worker.ts.
 */
import { RelaybusError } from "../../errors.js";
import type {
  CommittedMessage,
  FailedMessage,
  FromWriter,
  LogWriterConfig,
  PragmaMessage,
  PruneMessage,
  ToWriter,
  AppendMessage,
} from "./log-writer-protocol.js";
import { startWorker } from "../../start-worker.js";
import { fromWriterError } from "./storage-error.js";

/** What the main thread does with the writer's answers. */
export interface LogWriterHandlers {
  onCommitted(message: CommittedMessage): void;
  onFailed(message: FailedMessage): void;
  /**
   * The thread ended. `error` is set when it ended on its own (could not open the file,
   * crashed); undefined after {@link LogWriterThread.close}.
   */
  onExit(error: RelaybusError | undefined): void;
}

type Request = Omit<PruneMessage, "requestId"> | Omit<PragmaMessage, "requestId">;

/** The main thread's handle on the log writer thread. */
export interface LogWriterThread {
  /** Hands the appends of one turn over. Their answers go to the handlers. */
  append(message: AppendMessage): void;
  /** Sends a prune or pragma request; resolves with its result, rejects `ServiceUnavailable`. */
  request(message: Request): Promise<unknown>;
  /** Asks the thread to commit what it has, close its connection and end; resolves once it has. */
  close(): Promise<void>;
  /** True until the thread has ended. */
  readonly running: boolean;
}

/** Starts the writer thread on `config.path` (a log file the caller has migrated). */
export function startLogWriterThread(
  config: LogWriterConfig,
  handlers: LogWriterHandlers,
): LogWriterThread {
  const worker = startWorker(new URL("./log-writer-worker", import.meta.url), config);
  let running = true;
  let closeRequested = false;
  let openError: RelaybusError | undefined;
  /** Append calls and requests not answered yet: the thread stays referenced while > 0. */
  let outstanding = 0;
  let nextRequestId = 1;
  const requests = new Map<
    number,
    { resolve(value: unknown): void; reject(error: unknown): void }
  >();

  const updateRef = () => {
    // Referenced while closing too: the process must not exit before the last commit.
    if (outstanding > 0 || closeRequested) worker.ref();
    else worker.unref();
  };
  worker.unref();

  worker.on("message", (message: FromWriter) => {
    switch (message.type) {
      case "committed":
        outstanding -= message.callIds.length;
        handlers.onCommitted(message);
        break;
      case "failed":
        outstanding -= message.callIds.length;
        handlers.onFailed(message);
        break;
      case "result": {
        outstanding -= 1;
        const request = requests.get(message.requestId);
        requests.delete(message.requestId);
        if (message.ok) request?.resolve(message.value);
        else
          request?.reject(fromWriterError(message.error ?? { message: "unknown" }, "log writer"));
        break;
      }
      case "open-failed":
        openError = fromWriterError(message.error, "opening the log writer");
        break;
    }
    updateRef();
  });
  worker.on("error", (error) => {
    // An uncaught exception in the thread: it ends, and `exit` follows.
    openError ??= new RelaybusError(
      "ServiceUnavailable",
      `storage unavailable: the log writer thread failed: ${error.message}`,
      { details: { operation: "append" }, cause: error },
    );
  });
  const exited = new Promise<void>((resolve) => {
    worker.once("exit", () => {
      running = false;
      const error = closeRequested && openError === undefined ? undefined : stoppedError(openError);
      for (const request of requests.values()) request.reject(error ?? stoppedError(undefined));
      requests.clear();
      outstanding = 0;
      handlers.onExit(error);
      resolve();
    });
  });

  const post = (message: ToWriter) => worker.postMessage(message);

  return {
    append(message) {
      outstanding += message.callIds.length;
      updateRef();
      post(message);
    },
    request(message) {
      if (!running) return Promise.reject(stoppedError(openError));
      const requestId = nextRequestId++;
      outstanding += 1;
      updateRef();
      return new Promise((resolve, reject) => {
        requests.set(requestId, { resolve, reject });
        post({ ...message, requestId } as ToWriter);
      });
    },
    async close() {
      if (running && !closeRequested) {
        closeRequested = true;
        updateRef();
        post({ type: "close" });
      }
      await exited;
    },
    get running() {
      return running;
    },
  };
}

function stoppedError(cause: RelaybusError | undefined): RelaybusError {
  return (
    cause ??
    new RelaybusError("ServiceUnavailable", "storage unavailable: the log writer has stopped", {
      details: { operation: "append" },
    })
  );
}
