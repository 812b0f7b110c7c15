/**
 * The measurements of bench/stream.ts, each on one stream it creates and deletes again:
 * `drain` (how fast a stream without a quota in practice carries the whole backlog), `hold`
 * (what a 1-CU stream carries over a window), and `warmUp`.
 */
import type { StreamApi, StreamStatus } from "./stream-api.js";
import type { StreamReceiver } from "./stream-receiver-process.js";

/** A CU count no machine of today reaches through one stream: 320,000 events/s, 3.2 GB/s. */
export const NO_QUOTA_CU = 64;
/** How often a running stream's status is read. */
const POLL_MS = 250;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const now = (): number => performance.timeOrigin + performance.now();
const int = (n: number): string => Math.round(n).toLocaleString("en");

/** A stream from the bus `default`, oldest event first, to the receiver in batch mode. */
export function streamDefinition(
  name: string,
  url: string,
  maxEvents: number,
  minCU: number,
  maxCU: number,
): object {
  return {
    name,
    source: { bus: { bus: "default", startAt: "oldest" } },
    sink: { webhook: { url, mode: "batch" } },
    batch: { maxEvents, maxWaitMs: 10 },
    capacity: { minCU, maxCU },
  };
}

export function assertRunning(status: StreamStatus, name: string): void {
  if (status.state === "failed")
    throw new Error(
      `stream ${name} failed: ${status.reason ?? status.live?.lastError?.message ?? "no reason given"}`,
    );
}

export interface Drain {
  /** From the first arrival at the receiver to the last. */
  receiverPerSecond: number;
  /** From the stream's counters: eventsOut between the first commit seen and the last. */
  countersPerSecond: number;
  bytesPerSecond: number;
  /** From creating the stream to the last arrival. */
  totalMs: number;
  note: string;
}

/** Creates a stream without a quota in practice and times how fast it drains the whole backlog. */
export async function drain(
  api: StreamApi,
  receiver: StreamReceiver,
  name: string,
  events: number,
  maxEvents: number,
  eventBytes: number,
): Promise<Drain> {
  const path = `/${name}`;
  let arrived: Awaited<ReturnType<StreamReceiver["expect"]>> | undefined;
  // A receiver that dies leaves `arrived` unset: the deadline below ends the wait.
  const reached = receiver.expect(path, events).then(
    (counts) => {
      arrived = counts;
    },
    () => undefined,
  );
  const createdAt = now();
  await api.create(
    streamDefinition(name, receiver.url + path, maxEvents, NO_QUOTA_CU, NO_QUOTA_CU),
  );
  // Generous: 500 events/s, or 5 MB/s, is far below any machine this runs on.
  const deadline = createdAt + 30_000 + Math.max(events * 2, (events * eventBytes) / 5_000);
  let firstSeen: StreamStatus | undefined;
  let last = await api.status(name);
  while (arrived === undefined || last.counters.eventsOut < events) {
    if (now() > deadline)
      throw new Error(
        `stream ${name} carried ${int(last.counters.eventsOut)} of ${int(events)} events before the deadline`,
      );
    await Promise.race([reached, sleep(POLL_MS)]);
    last = await api.status(name);
    assertRunning(last, name);
    if (firstSeen === undefined && last.counters.eventsOut > 0 && last.counters.eventsOut < events)
      firstSeen = last;
  }
  await api.remove(name);
  const done = arrived;
  const countersMs = (last.lastEventAtMs ?? 0) - (firstSeen?.lastEventAtMs ?? 0);
  const notes: string[] = [];
  if (done.events !== events)
    notes.push(`the receiver counted ${int(done.events)} events (duplicates?)`);
  if (last.counters.eventsOut !== events) notes.push(`eventsOut ${int(last.counters.eventsOut)}`);
  return {
    receiverPerSecond:
      ((done.events - done.firstRequestEvents) / Math.max(1, done.lastAtMs - done.firstAtMs)) *
      1000,
    countersPerSecond:
      firstSeen === undefined || countersMs <= 0
        ? Number.NaN
        : ((last.counters.eventsOut - firstSeen.counters.eventsOut) / countersMs) * 1000,
    bytesPerSecond:
      firstSeen === undefined || countersMs <= 0
        ? Number.NaN
        : ((last.counters.bytesOut - firstSeen.counters.bytesOut) / countersMs) * 1000,
    totalMs: done.lastAtMs - createdAt,
    note: notes.join("; "),
  };
}

/**
 * Runs a stream over the first `events` events and deletes it, so that the first measured
 * stream does not pay for loading the connectors' modules and for the JIT's first passes.
 * It has a position of its own: the measured streams still read the whole backlog.
 */
export async function warmUp(
  api: StreamApi,
  receiver: StreamReceiver,
  events: number,
): Promise<void> {
  const name = "warm-up";
  const reached = receiver.expect(`/${name}`, events).catch(() => undefined);
  await api.create(
    streamDefinition(name, `${receiver.url}/${name}`, 100, NO_QUOTA_CU, NO_QUOTA_CU),
  );
  await Promise.race([reached, sleep(30_000)]);
  await api.remove(name);
}

export interface Held {
  receiverPerSecond: number;
  receiverBytesPerSecond: number;
  countersPerSecond: number;
  countersBytesPerSecond: number;
  /** Share of the window the quota held the stream back, by its throttledMs counter. */
  throttledShare: number;
  /** Events the stream had carried by the end: below the backlog, or the figure is void. */
  eventsOut: number;
}

/** Creates a 1-CU stream and measures what it carries over `seconds` after `warmUpMs`. */
export async function hold(
  api: StreamApi,
  receiver: StreamReceiver,
  name: string,
  maxEvents: number,
  warmUpMs: number,
  seconds: number,
): Promise<Held> {
  const path = `/${name}`;
  await api.create(streamDefinition(name, receiver.url + path, maxEvents, 1, 1));
  await sleep(warmUpMs);
  const [r0, c0] = await Promise.all([receiver.sample(path), api.status(name)]);
  await sleep(seconds * 1000);
  const [r1, c1] = await Promise.all([receiver.sample(path), api.status(name)]);
  assertRunning(c1, name);
  await api.remove(name);
  const receiverMs = r1.atMs - r0.atMs;
  // Server time of the last commit at each reading; 0 when nothing was committed in between.
  const countersMs = (c1.lastEventAtMs ?? 0) - (c0.lastEventAtMs ?? 0);
  const perSecond = (delta: number) => (countersMs > 0 ? (delta / countersMs) * 1000 : 0);
  return {
    receiverPerSecond: ((r1.events - r0.events) / receiverMs) * 1000,
    receiverBytesPerSecond: ((r1.bytes - r0.bytes) / receiverMs) * 1000,
    countersPerSecond: perSecond(c1.counters.eventsOut - c0.counters.eventsOut),
    countersBytesPerSecond: perSecond(c1.counters.bytesOut - c0.counters.bytesOut),
    throttledShare: (c1.counters.throttledMs - c0.counters.throttledMs) / receiverMs,
    eventsOut: c1.counters.eventsOut,
  };
}
