/**
 * Starts bench/stream-receiver.ts as its own process and talks to it over IPC: the parent's
 * side of the receiver of bench/stream.ts.
 */
import { fork } from "node:child_process";
import { MODULE_EXEC_ARGV } from "./bench-modules.js";
import type { PathCounts } from "./stream-receiver.js";

type FromReceiver =
  | { type: "ready"; port: number }
  | ({ type: "reached" } & PathCounts)
  | ({ type: "sample" } & PathCounts);

export interface StreamReceiver {
  /** `http://127.0.0.1:<port>`; append a path per stream. */
  url: string;
  /** Resolves with the path's counts once `events` events came to `path` (no timeout: the caller has one). */
  expect(path: string, events: number): Promise<PathCounts>;
  /** The path's counts now. */
  sample(path: string): Promise<PathCounts>;
  stop(): Promise<void>;
}

/** Forks the receiver at `modulePath` (compiled, or through tsx: as this runs) and waits until it listens. */
export async function startStreamReceiver(modulePath: string): Promise<StreamReceiver> {
  const child = fork(modulePath, [], {
    execArgv: [...MODULE_EXEC_ARGV],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const next = <T extends FromReceiver["type"]>(type: T, path?: string) =>
    new Promise<Extract<FromReceiver, { type: T }>>((resolve, reject) => {
      const onMessage = (message: FromReceiver) => {
        if (
          message.type !== type ||
          (path !== undefined && "path" in message && message.path !== path)
        )
          return;
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolve(message as Extract<FromReceiver, { type: T }>);
      };
      const onExit = () => {
        child.off("message", onMessage);
        reject(new Error(`the receiver exited while the benchmark waited for "${type}"`));
      };
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
  const { port } = await next("ready");
  return {
    url: `http://127.0.0.1:${port}`,
    expect(path, events) {
      const reached = next("reached", path);
      child.send({ type: "expect", path, events });
      return reached;
    },
    sample(path) {
      const sampled = next("sample", path);
      child.send({ type: "sample", path });
      return sampled;
    },
    async stop() {
      if (child.exitCode === null) child.send({ type: "stop" });
      await exited;
    },
  };
}
