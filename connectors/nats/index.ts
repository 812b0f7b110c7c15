/**
 * The NATS JetStream connectors: a sink that publishes events to a subject a stream
 * captures, and a source that reads a stream through a durable pull consumer.
 */
export { natsSink, type NatsSinkConfig, type NatsSinkFormat } from "./sink.js";
export { natsSource, type NatsSourceConfig, type NatsDeliverPolicy } from "./source.js";
