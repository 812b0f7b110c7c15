/** Every connector Relaybus ships, by name. Streams look connectors up here. */
import type { ConnectorDefinition } from "./connector.js";
import { busSink, busSource } from "./bus/index.js";
import { fileSink } from "./file/index.js";
import { httpSource } from "./http/index.js";
import { mqttSink, mqttSource } from "./mqtt/index.js";
import { natsSink, natsSource } from "./nats/index.js";
import { postgresSink, postgresSource } from "./postgres/index.js";
import { rabbitmqSink, rabbitmqSource } from "./rabbitmq/index.js";
import { redisSink, redisSource } from "./redis/index.js";
import { scheduleSource } from "./schedule/index.js";
import { webhookSink } from "./webhook/index.js";

export type {
  BusRecord,
  ConnectorContext,
  ConnectorDefinition,
  RelaybusPort,
  Sink,
  SinkDefinition,
  Source,
  SourceBatch,
  SourceContext,
  SourceDefinition,
} from "./connector.js";
export { SinkError } from "./connector.js";

/** The connectors, sources and sinks alike. */
export const CONNECTORS: readonly ConnectorDefinition[] = [
  busSource as ConnectorDefinition,
  busSink as ConnectorDefinition,
  fileSink as ConnectorDefinition,
  httpSource as ConnectorDefinition,
  mqttSource as ConnectorDefinition,
  mqttSink as ConnectorDefinition,
  natsSource as ConnectorDefinition,
  natsSink as ConnectorDefinition,
  postgresSource as ConnectorDefinition,
  postgresSink as ConnectorDefinition,
  rabbitmqSource as ConnectorDefinition,
  rabbitmqSink as ConnectorDefinition,
  redisSource as ConnectorDefinition,
  redisSink as ConnectorDefinition,
  scheduleSource as ConnectorDefinition,
  webhookSink as ConnectorDefinition,
];
