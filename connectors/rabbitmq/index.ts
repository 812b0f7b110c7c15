/** The RabbitMQ (AMQP 0-9-1) connectors: a sink that publishes to an exchange, a source that consumes a queue. */
export { rabbitmqSink, type RabbitmqSinkConfig } from "./rabbitmq-sink.js";
export { rabbitmqSource, type RabbitmqSourceConfig } from "./rabbitmq-source.js";
