/**
 * The distributed storage: the event log in NATS JetStream streams, one per bus, shared by
 * every Relaybus node of a cluster.
 */
export { openJetStreamLog, openJetStreamStorage } from "./open-jetstream-storage.js";
export type { JetStreamLogOptions, JetStreamStorage, JetStreamStorageOptions } from "./open-jetstream-storage.js";
export type { JetStreamLog } from "./jetstream-log.js";
export { jetStreamNames, busToken, busFromToken, idToken } from "./jetstream-names.js";
