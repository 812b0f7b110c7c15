/**
 * The house rule "a test fails when something it started is left open": waits briefly for
 * sockets, servers and ref'd timers to close, then fails naming what is still open.
 */
import assert from "node:assert/strict";

/** Handles that show a socket, server or ref'd timer is still open. */
const OPEN_KINDS = new Set(["TCPSocketWrap", "TCPServerWrap", "TCPWRAP", "Timeout"]);

/** Resolves once nothing is open; fails after 2 s listing what still is. */
export async function assertNothingOpen(): Promise<void> {
  const deadline = Date.now() + 2_000;
  let open: string[] = [];
  while (Date.now() < deadline) {
    open = process.getActiveResourcesInfo().filter((kind) => OPEN_KINDS.has(kind));
    if (open.length === 0) return;
    // setImmediate, not a timer: a pending timer would itself count as open.
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.deepEqual(open, [], "sockets or timers left open");
}
