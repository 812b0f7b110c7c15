/**
 * A {@link WebhookSender} whose HTTP requests run in worker threads, each with its own
 * `createWebhookSender` (`webhook-sender-worker.ts`). Delivering to one fast receiver, the
 * main thread was the bottleneck (~85 µs of its CPU a delivery, ~35 µs of it the HTTP
 * client) while the second core idled; a sender thread takes the HTTP client off it.
 *
 * Cheap per request: the requests of one main-thread turn go to each thread as one message
 * (posted from `setImmediate`, so everything sent while handling one batch of results or one
 * timer rides together), and each thread answers a turn's results as one message; a message
 * that reaches `MAX_CALLS_PER_MESSAGE` goes at once, so that the threads overlap. Requests
 * are spread over the threads by a hash of their origin, so each origin's keep-alive pool
 * lives in one thread (and with one busy origin, one thread does all its sending).
 *
 * Same contract as the in-thread sender: `send` never rejects; `close` lets requests in
 * flight finish up to `closeTimeoutMs`, then aborts them. A thread that dies (an uncaught
 * error, `terminate`) answers nothing, so its requests resolve here as `connection` errors
 * ("sender thread died: …"), retryable, and a new thread is started in its place.
 *
 * The threads' log lines (the sender's warnings) reach `options.logger` as messages.
 */
import { performance } from "node:perf_hooks";
import type { Worker } from "node:worker_threads";
import { DEFAULT_CONFIG } from "../config/defaults.js";
import { RelaybusError } from "../errors.js";
import { startWorker } from "../start-worker.js";
import type { SendResult } from "./classify-outcome.js";
import { compileOutboundPolicy } from "./outbound-guard.js";
import {
  ANSWER_SLOTS,
  CALL_SLOTS,
  MAX_CALLS_PER_MESSAGE,
  answerAt,
  pushCall,
  type CallList,
  type FromSenderThread,
  type SenderThreadConfig,
  type ToSenderThread,
} from "./webhook-sender-protocol.js";
import type { OutgoingRequest, WebhookSender, WebhookSenderOptions } from "./webhook-sender.js";

/** Options of {@link createThreadedWebhookSender}. */
export interface ThreadedWebhookSenderOptions extends WebhookSenderOptions {
  /**
   * Sender threads (`delivery.senderThreads`). Default 1. More than one helps only with
   * several busy origins: one origin's requests all go to one thread.
   */
  threads?: number;
}

/** A {@link WebhookSender} backed by threads. */
export interface ThreadedWebhookSender extends WebhookSender {
  /**
   * Ends thread `index` at once, as a crash would (for tests): its requests in flight
   * resolve as `connection` errors and a new thread takes its place. Resolves once it ended.
   */
  terminateThread(index: number): Promise<void>;
}

/** What the main thread keeps of a request until its thread answers. */
interface Pending {
  resolve(result: SendResult): void;
  startedAt: number;
}

/** One running sender thread. */
interface SenderThread {
  readonly worker: Worker;
  /** Requests posted (or about to be) and not answered yet, by id. */
  readonly pending: Map<number, Pending>;
  /** The requests of this turn, posted by the next flush. */
  outgoing: CallList;
  /** Set once the thread has answered anything: it started, so restarting it is worth it. */
  answered: boolean;
  /** Why it ended, when it failed (the `error` event comes before `exit`). */
  failure: string | undefined;
  readonly exited: Promise<void>;
}

/** How long `close` waits past `closeTimeoutMs` for a thread to end before terminating it. */
const CLOSE_GRACE_MS = 2_000;

/**
 * Creates a sender with `options.threads` (default 1) sender threads, started at once.
 * Throws `InvalidConfig` if `threads` is not a positive integer, if a CIDR block of
 * `options.outbound` is bad, or if `options.lookup` is given: a function cannot cross into
 * a thread, so a custom resolver needs the in-thread `createWebhookSender` (a silent
 * fallback would hide that the threads are not in use).
 */
export function createThreadedWebhookSender(
  options: ThreadedWebhookSenderOptions,
): ThreadedWebhookSender {
  const threadCount = options.threads ?? 1;
  if (!Number.isInteger(threadCount) || threadCount < 1) {
    throw new RelaybusError(
      "InvalidConfig",
      `sender threads: expected a positive integer, got ${threadCount}`,
    );
  }
  if (options.lookup !== undefined) {
    throw new RelaybusError(
      "InvalidConfig",
      "sender threads cannot use a custom lookup function; use createWebhookSender (senderThreads 0) with it",
    );
  }
  // Checked here too, so that a bad block fails at start rather than inside a thread.
  compileOutboundPolicy(options.outbound ?? DEFAULT_CONFIG.delivery.outbound);
  const config: SenderThreadConfig = { connectionsPerOrigin: options.connectionsPerOrigin };
  if (options.keepAliveTimeoutMs !== undefined)
    config.keepAliveTimeoutMs = options.keepAliveTimeoutMs;
  if (options.closeTimeoutMs !== undefined) config.closeTimeoutMs = options.closeTimeoutMs;
  if (options.outbound !== undefined) config.outbound = options.outbound;
  const closeTimeoutMs = options.closeTimeoutMs ?? 1_000;
  const { logger } = options;

  const threads: (SenderThread | undefined)[] = [];
  let nextId = 1;
  let flushScheduled = false;
  let closing = false;

  const answer = (pending: Pending, error: string) =>
    pending.resolve({
      error,
      errorKind: "connection",
      durationMs: Math.round(performance.now() - pending.startedAt),
    });

  function start(index: number): SenderThread {
    const worker = startWorker(new URL("./webhook-sender-worker", import.meta.url), config);
    // Referenced only while requests are pending: an idle sender keeps no process alive.
    worker.unref();
    let resolveExited!: () => void;
    const thread: SenderThread = {
      worker,
      pending: new Map(),
      outgoing: [],
      answered: false,
      failure: undefined,
      exited: new Promise<void>((resolve) => (resolveExited = resolve)),
    };
    worker.on("message", (message: FromSenderThread) => {
      switch (message.type) {
        case "results": {
          thread.answered = true;
          const { answers } = message;
          for (let index = 0; index < answers.length; index += ANSWER_SLOTS) {
            const id = answers[index] as number;
            const pending = thread.pending.get(id);
            if (pending === undefined) continue;
            thread.pending.delete(id);
            pending.resolve(answerAt(answers, index));
          }
          if (thread.pending.size === 0) worker.unref();
          break;
        }
        case "log":
          logger[message.level](message.message, message.fields);
          break;
        case "closed":
          void worker.terminate();
          break;
      }
    });
    worker.on("error", (error) => {
      thread.failure = error.message;
    });
    worker.once("exit", (code) => {
      const reason = closing
        ? "sender closed"
        : `sender thread died: ${thread.failure ?? `exit code ${code}`}`;
      for (const pending of thread.pending.values()) answer(pending, reason);
      thread.pending.clear();
      thread.outgoing = [];
      if (threads[index] === thread) {
        threads[index] = undefined;
        if (!closing) {
          logger.warn("webhook sender thread ended; its requests in flight failed", {
            thread: index,
            error: reason,
          });
          // A thread that never answered may not start at all (a module that fails to
          // load): the next request starts one rather than a loop of restarts.
          if (thread.answered) threads[index] = start(index);
        }
      }
      resolveExited();
    });
    return thread;
  }

  for (let i = 0; i < threadCount; i++) threads[i] = start(i);

  function flush(): void {
    flushScheduled = false;
    for (const thread of threads) {
      if (thread === undefined || thread.outgoing.length === 0) continue;
      const calls = thread.outgoing;
      thread.outgoing = [];
      thread.worker.postMessage({ type: "send", calls } satisfies ToSenderThread);
    }
  }

  function send(request: OutgoingRequest): Promise<SendResult> {
    if (closing)
      return Promise.resolve({ error: "sender closed", errorKind: "connection", durationMs: 0 });
    const index = threadCount === 1 ? 0 : hashOrigin(request.url) % threadCount;
    const thread = threads[index] ?? (threads[index] = start(index));
    const id = nextId++;
    if (thread.pending.size === 0) thread.worker.ref();
    pushCall(thread.outgoing, id, request);
    if (thread.outgoing.length >= MAX_CALLS_PER_MESSAGE * CALL_SLOTS) {
      // A full message goes now, so that the thread starts on it while this turn goes on.
      const calls = thread.outgoing;
      thread.outgoing = [];
      thread.worker.postMessage({ type: "send", calls } satisfies ToSenderThread);
    } else if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    return new Promise((resolve) =>
      thread.pending.set(id, { resolve, startedAt: performance.now() }),
    );
  }

  async function closeThread(thread: SenderThread): Promise<void> {
    thread.worker.ref();
    if (thread.outgoing.length > 0) {
      thread.worker.postMessage({ type: "send", calls: thread.outgoing } satisfies ToSenderThread);
      thread.outgoing = [];
    }
    thread.worker.postMessage({ type: "close" } satisfies ToSenderThread);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), closeTimeoutMs + CLOSE_GRACE_MS);
    });
    const result = await Promise.race([thread.exited, late]);
    clearTimeout(timer);
    if (result === "late") {
      logger.warn("webhook sender thread did not end at close; terminating it");
      await thread.worker.terminate();
      await thread.exited;
    }
  }

  let closed: Promise<void> | undefined;
  return {
    send,
    close() {
      closed ??= (async () => {
        closing = true;
        await Promise.all(
          threads.map((thread) => (thread === undefined ? undefined : closeThread(thread))),
        );
      })();
      return closed;
    },
    async terminateThread(index) {
      const thread = threads[index];
      if (thread === undefined) return;
      await thread.worker.terminate();
      await thread.exited;
    },
  };
}

/**
 * FNV-1a of the URL's origin as written (scheme, host, port; ASCII case folded), without
 * parsing the URL: the thread parses it, and reports it if it is invalid.
 */
function hashOrigin(url: string): number {
  const hostStart = url.indexOf("://");
  let end = url.length;
  if (hostStart !== -1) {
    for (let i = hostStart + 3; i < url.length; i++) {
      const c = url.charCodeAt(i);
      if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
        end = i;
        break;
      }
    }
  }
  let hash = 0x811c9dc5;
  for (let i = 0; i < end; i++) {
    let c = url.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  return hash >>> 0;
}
