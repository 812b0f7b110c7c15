/**
 * The PostgreSQL connectors: a sink that inserts events as rows, deduplicated on the event
 * id, and a source that reads new rows in the order of a monotonic column.
 */
export { postgresSink, type ColumnMapping, type PostgresSinkConfig } from "./sink.js";
export { postgresSource, type PostgresSourceConfig } from "./source.js";
