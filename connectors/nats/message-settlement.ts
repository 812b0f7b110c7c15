/**
 * Acknowledging what the source handed over: an ack once the stream confirmed a batch, a nak
 * (deliver again) once it refused one, in the order the batches were handed over.
 */
import type { JsMsg } from "nats";

/** Acks and naks are sent without waiting; once the connection closed they cannot be, and the ack wait decides. */
function settle(messages: readonly JsMsg[], outcome: "ack" | "nak"): void {
  try {
    for (const message of messages) {
      if (outcome === "ack") message.ack();
      else message.nak();
    }
  } catch {
    // The connection closed under us: JetStream delivers these again after the ack wait.
  }
}

export interface MessageSettlement {
  ack(batch: readonly JsMsg[]): void;
  /** Naks the batch, or holds the nak until {@link releaseNaks}. */
  nak(batch: readonly JsMsg[]): void;
  /** Whether naks are held. */
  holdsNaks(): boolean;
  /** Sends the held naks, in the order given, and every later one at once. */
  releaseNaks(): void;
}

/**
 * Acks go out at once; naks wait for `releaseNaks()`. JetStream (2.9) redelivers a nak'd
 * message at once to the oldest open pull request without asking whether anyone still
 * listens to it: a nak sent while a stopped run's last request is still open would send the
 * message to a subscription that is gone, and only the ack wait would bring it back, late
 * and out of order. So a stopping source holds its naks until that request expired.
 */
export function createMessageSettlement(): MessageSettlement {
  let released = false;
  const held: Array<readonly JsMsg[]> = [];
  return {
    ack: (batch) => settle(batch, "ack"),
    nak(batch) {
      if (released) settle(batch, "nak");
      else held.push(batch);
    },
    holdsNaks: () => held.length > 0,
    releaseNaks() {
      released = true;
      for (const batch of held.splice(0)) settle(batch, "nak");
    },
  };
}
