/**
 * One node of a cluster at a time runs the work that must not run twice: event streams and
 * schedules (a stream on every node would write each event to its sink once per node). The
 * node holding the lease leads; when it dies or loses the cluster, another takes the lease
 * once it has run out.
 */

export interface Leadership {
  /** True while this node holds the lease. */
  readonly isLeader: boolean;
  /** Calls `listener` each time this node gains (true) or loses (false) the lease. Returns an unsubscribe. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Gives the lease up (when held) and stops trying to take it. */
  close(): Promise<void>;
}
