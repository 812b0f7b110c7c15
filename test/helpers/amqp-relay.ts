/**
 * A TCP relay in front of a real AMQP broker, for tests that must act between the broker's
 * answer and the client seeing it. The relay forwards bytes unchanged both ways; it only
 * understands where AMQP frames start (type, channel, size, payload, end octet), so that it
 * can hold the broker's next answer while a test changes the broker, or cut a connection the
 * moment the client next sends something. Nothing of the protocol is imitated.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

/** AMQP 0-9-1 frame type of a method (others: content header, body, heartbeat). */
const FRAME_METHOD = 1;
/** Frame header: type (1 byte), channel (2), payload size (4). */
const FRAME_HEADER_BYTES = 7;
/** A method payload starts with its class id and method id, 2 bytes each. */
const METHOD_ID_BYTES = 4;
/**
 * The methods with which a broker answers a publish, as `class.method`: basic.return (60.50),
 * basic.ack (60.80), basic.nack (60.120), channel.close (20.40), connection.close (10.50).
 */
const PUBLISH_ANSWERS = new Set(["60.50", "60.80", "60.120", "20.40", "10.50"]);
/** After the payload: the frame-end octet 0xCE. */
const FRAME_END_BYTES = 1;

export interface AmqpRelay {
  /** `amqp://` URL of the relay, with the target's credentials and vhost. */
  url: string;
  /**
   * When the broker next answers a publish (return, ack, nack, or closing the channel or
   * connection, on any relayed connection), runs `action` before the client receives that
   * answer or anything after it, once. A
   * failure of `action` is kept and thrown by {@link AmqpRelay.close}.
   */
  holdNextAnswer(action: () => Promise<void>): void;
  /** Cuts the first relayed connection whose client next sends anything, once. */
  cutOnNextSend(): void;
  /** Stops listening and cuts every relayed connection. */
  close(): Promise<void>;
}

/** Starts a relay on loopback to the broker at `targetUrl`. */
export async function createAmqpRelay(targetUrl: string): Promise<AmqpRelay> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || 5672);
  const sockets = new Set<Socket>();
  let hold: (() => Promise<void>) | undefined;
  let cut = false;
  let failure: unknown;

  const server: Server = createServer((client) => {
    const broker = connect({ host: target.hostname, port: targetPort });
    sockets.add(client).add(broker);
    const end = () => {
      client.destroy();
      broker.destroy();
      sockets.delete(client);
      sockets.delete(broker);
    };
    client.on("error", end).on("close", end);
    broker.on("error", end).on("close", end);
    client.on("data", (chunk: Buffer) => {
      if (!cut) {
        broker.write(chunk);
        return;
      }
      cut = false;
      end();
    });
    const frames = createFrameScanner();
    broker.on("data", (chunk: Buffer) => {
      // Scanned always: frame boundaries are only known by following every byte.
      const answers = frames.scan(chunk);
      const action = hold;
      if (action === undefined || !answers) {
        client.write(chunk);
        return;
      }
      hold = undefined;
      broker.pause();
      action()
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => {
          client.write(chunk);
          broker.resume();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string")
    throw new Error("the relay has no TCP address");
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);

  return {
    url: url.href,
    holdNextAnswer(action) {
      hold = action;
    },
    cutOnNextSend() {
      cut = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (failure !== undefined) throw failure;
    },
  };
}

/**
 * Follows frame boundaries in the broker's byte stream (chunks split frames anywhere);
 * `scan` says whether a frame that answers a publish starts in the chunk.
 */
function createFrameScanner(): { scan(chunk: Buffer): boolean } {
  // The broker's first bytes are frames (Connection.Start); only a refused protocol header
  // gets a non-frame answer, and then the connection ends anyway.
  let head = Buffer.alloc(0);
  let skipBytes = 0;
  return {
    scan(chunk) {
      let answer = false;
      let at = 0;
      while (at < chunk.length) {
        if (skipBytes > 0) {
          const skipped = Math.min(skipBytes, chunk.length - at);
          skipBytes -= skipped;
          at += skipped;
          continue;
        }
        // A method frame is read up to its class and method ids; other frames to their size.
        const wanted =
          head.length >= FRAME_HEADER_BYTES && head[0] === FRAME_METHOD
            ? FRAME_HEADER_BYTES + METHOD_ID_BYTES
            : FRAME_HEADER_BYTES;
        const take = Math.min(wanted - head.length, chunk.length - at);
        head = Buffer.concat([head, chunk.subarray(at, at + take)]);
        at += take;
        if (head.length < wanted) continue;
        if (head[0] === FRAME_METHOD && wanted === FRAME_HEADER_BYTES) continue;
        const payloadBytes = head.readUInt32BE(3);
        if (head[0] === FRAME_METHOD) {
          answer ||= PUBLISH_ANSWERS.has(`${head.readUInt16BE(7)}.${head.readUInt16BE(9)}`);
          skipBytes = payloadBytes - METHOD_ID_BYTES + FRAME_END_BYTES;
        } else {
          skipBytes = payloadBytes + FRAME_END_BYTES;
        }
        head = Buffer.alloc(0);
      }
      return answer;
    },
  };
}
