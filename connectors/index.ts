/** Every connector Relaybus ships, by name. Streams look connectors up here. */
import type { ConnectorDefinition } from "./connector.js";
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
export const CONNECTORS: readonly ConnectorDefinition[] = [webhookSink as ConnectorDefinition];
