/**
 * Waits `ms`, or less when `signal` aborts first; never rejects. The stream runner, its writer
 * and the bus scheduler all wait this way (quota debt, retry backoff, source restarts), and
 * each wait removes its abort listener when it ends: a long-lived stream waits millions of times.
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
