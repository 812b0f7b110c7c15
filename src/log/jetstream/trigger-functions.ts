/**
 * SQL functions the sharing triggers (`shared-tables.ts`, `shared-usage.ts`) call on the
 * state connection: waking the outbox's sender, and holding back rows that change often.
 */
import type Database from "better-sqlite3";

/**
 * `name()` wakes the outbox's sender. The trigger calls it inside the writer's statement,
 * where the connection may run nothing else: the wake-up comes once the statement is over.
 */
export function installWakeFunction(db: Database.Database, name: string, changed: () => void): void {
  let waking = false;
  db.function(name, { deterministic: false }, () => {
    if (!waking) {
      waking = true;
      queueMicrotask(() => {
        waking = false;
        changed();
      });
    }
    return null;
  });
}

/**
 * `name(value..., ms)`: 1 when the row the values name was last shared at least `ms` ago (and
 * marks it shared now), else 0. A row held back is touched once its interval is over (`touch`
 * with its values: an update that fires the trigger again), so its last change is shared too.
 * Returns what touches every row held back at once (before the node stops sharing).
 */
export function installThrottleFunction(
  db: Database.Database,
  name: string,
  touch: (values: unknown[]) => void,
): () => void {
  const lastShared = new Map<string, number>();
  const heldBack = new Map<string, { timer: NodeJS.Timeout; values: unknown[] }>();
  const touchNow = (id: string) => {
    const held = heldBack.get(id);
    if (held === undefined) return;
    clearTimeout(held.timer);
    heldBack.delete(id);
    lastShared.delete(id); // due: the touch shares it
    try {
      touch(held.values);
    } catch {
      // the connection closed meanwhile
    }
  };
  db.function(name, { deterministic: false, varargs: true }, (...args: unknown[]) => {
    const everyMs = Number(args[args.length - 1]);
    const values = args.slice(0, -1);
    const id = JSON.stringify(values);
    const nowMs = Date.now();
    const last = lastShared.get(id);
    if (last === undefined || nowMs - last >= everyMs) {
      lastShared.set(id, nowMs);
      // Rows that stopped changing (past hours, say): forget them now and then.
      if (lastShared.size > 10_000) for (const [key, at] of lastShared) if (nowMs - at > everyMs) lastShared.delete(key);
      return 1;
    }
    if (!heldBack.has(id)) {
      const timer = setTimeout(() => touchNow(id), everyMs - (nowMs - last) + 10);
      timer.unref();
      heldBack.set(id, { timer, values });
    }
    return 0;
  });
  return () => {
    for (const id of [...heldBack.keys()]) touchNow(id);
  };
}
