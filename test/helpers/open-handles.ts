/**
 * The house rule "a test fails when something it started is left open": waits briefly for
 * sockets, servers and ref'd timers to close, then fails naming what is still open, with
 * where each timer still pending was made.
 */
import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";

/** Handles that show a socket, server or ref'd timer is still open. */
const OPEN_KINDS = new Set(["TCPSocketWrap", "TCPServerWrap", "TCPWRAP", "Timeout"]);

/** A timer made in this process, and the stack that made it (formatted only if reported). */
interface TimerRecord {
  timer: WeakRef<NodeJS.Timeout>;
  madeAt: Error;
}
/** Timers made since this module loaded, pruned of those done now and then. */
const timers = new Map<number, TimerRecord>();
/** Prune once the map holds this many more records than after the last pruning. */
const PRUNE_EVERY = 1_000;
let pruneAt = PRUNE_EVERY;

/**
 * A `Timeout` that fired (not an interval) or was cleared is marked `_destroyed` (Node's
 * timers, stable since Node 10); a destroy hook would tell the same, but with it Node tracks
 * every promise's collection too, which slows whole test files.
 */
function isPending(timer: NodeJS.Timeout | undefined): timer is NodeJS.Timeout {
  return timer !== undefined && (timer as unknown as { _destroyed?: boolean })._destroyed !== true;
}

/**
 * Frames a timer's stack keeps: the 6 to 8 of this hook and Node's timer code (left out of
 * the report), and the callers. Each frame costs: the fuzz test makes ~90,000 ref'd timers.
 */
const STACK_FRAMES = 16;

// Only the init hook: keeping the Error (not its text) defers formatting the stack to a report.
// Timers unref'd from the start (Node's own socket timeouts) are skipped: they hold nothing open.
createHook({
  init(asyncId, type, _triggerAsyncId, resource) {
    if (type !== "Timeout" || !(resource as NodeJS.Timeout).hasRef()) return;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = STACK_FRAMES;
    timers.set(asyncId, { timer: new WeakRef(resource as NodeJS.Timeout), madeAt: new Error("timer made") });
    Error.stackTraceLimit = limit;
    if (timers.size >= pruneAt) {
      for (const [id, record] of timers) if (!isPending(record.timer.deref())) timers.delete(id);
      pruneAt = timers.size + PRUNE_EVERY;
    }
  },
}).enable();

/** Frames of this hook and of Node making the timer, left out of the stacks reported. */
const OWN_FRAMES = /AsyncHook\.init|node:internal\/(async_hooks|timers)[:)]/;

/** Where each ref'd timer still pending was made, for the failure message. */
function pendingTimers(): string[] {
  const found: string[] = [];
  for (const record of timers.values()) {
    const timer = record.timer.deref();
    if (!isPending(timer) || !timer.hasRef()) continue;
    const callback = (timer as unknown as { _onTimeout?: unknown })._onTimeout;
    const stack = (record.madeAt.stack ?? "")
      .split("\n")
      .filter((line) => line.startsWith("    at ") && !OWN_FRAMES.test(line))
      .join("\n");
    const source = typeof callback === "function" ? String(callback).slice(0, 200) : "?";
    found.push(`Timeout of ${(timer as unknown as { _idleTimeout?: number })._idleTimeout} ms, calling ${source}\n${stack}`);
  }
  return found;
}

/** Resolves once nothing is open; fails after 2 s listing what still is. Usable as a hook itself. */
export function assertNothingOpen(): Promise<void> {
  return assertNothingOpenWithin(2_000);
}

/** {@link assertNothingOpen} with a wait of `withinMs`: for a test of how soon a close lets go. */
export async function assertNothingOpenWithin(withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  let open: string[] = [];
  while (Date.now() < deadline) {
    open = process.getActiveResourcesInfo().filter((kind) => OPEN_KINDS.has(kind));
    if (open.length === 0) return;
    // setImmediate, not a timer: a pending timer would itself count as open.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const made = open.includes("Timeout") ? pendingTimers() : [];
  assert.deepEqual(
    open,
    [],
    made.length === 0 ? "sockets or timers left open" : `sockets or timers left open; the timers were made:\n${made.join("\n\n")}`,
  );
}
