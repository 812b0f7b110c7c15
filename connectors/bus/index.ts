/** The bus connectors: a stream may read from and write to Relaybus's own buses. */
export { busSource, BUS_START_POSITIONS, DEFAULT_READ_AHEAD } from "./bus-source.js";
export type { BusSourceConfig, BusStartPosition } from "./bus-source.js";
export { busSink } from "./bus-sink.js";
export type { BusSinkConfig } from "./bus-sink.js";
