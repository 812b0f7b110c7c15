/** Opening and closing the connectors' AMQP connections. */
import { connect, type ChannelModel } from "amqplib";

/** The broker the connectors use when the config names none: a local RabbitMQ with its default user. */
export const DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672";

/**
 * Connects to `url` within `timeoutMs` (TCP connect and AMQP handshake). `name` is shown
 * in RabbitMQ's connection list, so an operator can tell which stream holds a connection.
 * The connection's `error` event is swallowed: a `close` event always follows it, which is
 * what owners watch, and an `error` without a listener would crash the process.
 */
export async function openConnection(
  url: string,
  options: { timeoutMs: number; name: string },
): Promise<ChannelModel> {
  const connection = await connect(url, {
    timeout: options.timeoutMs,
    clientProperties: { connection_name: options.name },
  });
  connection.on("error", () => {});
  return connection;
}

/** Closes a connection, ignoring that it may be closed or broken already (close paths must not throw). */
export async function closeQuietly(
  closable: { close(): Promise<void> } | undefined,
): Promise<void> {
  if (closable === undefined) return;
  try {
    await closable.close();
  } catch {
    // Already closed, or the socket is gone: either way nothing is left to release.
  }
}
