/**
 * Work on a bus's log shared by the nodes of a cluster. Each event is handed to one node at a
 * time; that node acknowledges it once it is done with it. An event not acknowledged within
 * the claim time (its node died, or stalled) is handed out again, to any node: at least once,
 * and a node that dies has its unfinished events taken over by the others.
 *
 * Only engines shared by several nodes offer it (`LogEngine.sharedConsumer`); on the embedded
 * log each part follows the log from a checkpoint of its own instead.
 */
import type { StoredEvent } from "../types.js";

/** An event claimed by this node. */
export interface ClaimedEvent {
  event: StoredEvent;
  /** Times it was handed out before this one (0 the first time). */
  redeliveries: number;
  /** Done with it: it is never handed out again. */
  ack(): void;
  /** Still working on it: its claim time starts over. */
  extend(): void;
}

/** One kind of work (dispatch, say) over the logs of every bus, shared by the nodes. */
export interface SharedLogConsumer {
  /** How long a claim lasts without `extend` or `ack`, ms. */
  readonly claimMs: number;
  /**
   * Claims up to `maxEvents` events of `bus`, waiting up to `maxWaitMs` for the first ones
   * (an empty answer then). Events come in log order within one answer; across nodes and
   * redeliveries there is no order.
   */
  claim(bus: string, maxEvents: number, maxWaitMs: number): Promise<ClaimedEvent[]>;
  /**
   * The lowest offset of `bus` some node may still have to work on (every event before it was
   * acknowledged), for retention. 1 when nothing was acknowledged yet.
   */
  firstUnfinished(bus: string): Promise<number>;
  /** Ends claims waiting for events now (closing); what they claimed goes back. Later claims return nothing. */
  stop(): void;
}
