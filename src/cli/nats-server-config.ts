/**
 * The configuration file of one nats-server in a local JetStream cluster, in nats-server's
 * own config syntax (checked against nats-server v2.9.10 with `nats-server -c FILE -t`).
 */

/** What one server of the cluster needs to know to write its config. */
export interface NatsServerConfigSpec {
  /** server_name: JetStream clustering needs a stable, unique name per server. */
  name: string;
  /** Client port, listened on at 127.0.0.1. */
  clientPort: number;
  /** Route port, listened on at 127.0.0.1. */
  clusterPort: number;
  /** The route ports of the other servers; empty for a single server (no cluster block). */
  peerClusterPorts: number[];
  clusterName: string;
  /** JetStream's store_dir: the server keeps its streams here across restarts. */
  storeDir: string;
}

/**
 * Renders the config. Strings are written as JSON strings, which nats-server's parser reads
 * as quoted strings, so paths with spaces stay one value. A single server gets no cluster
 * block: v2.9.10 refuses JetStream in a cluster block without routes ("JetStream cluster
 * requires configured routes") and exits.
 */
export function renderNatsServerConfig(spec: NatsServerConfigSpec): string {
  const quote = (value: string) => JSON.stringify(value);
  const lines = [
    `server_name: ${quote(spec.name)}`,
    `listen: ${quote(`127.0.0.1:${spec.clientPort}`)}`,
    "jetstream {",
    `  store_dir: ${quote(spec.storeDir)}`,
    "}",
  ];
  if (spec.peerClusterPorts.length > 0) {
    lines.push(
      "cluster {",
      `  name: ${quote(spec.clusterName)}`,
      `  listen: ${quote(`127.0.0.1:${spec.clusterPort}`)}`,
      "  routes: [",
      ...spec.peerClusterPorts.map((port) => `    ${quote(`nats-route://127.0.0.1:${port}`)}`),
      "  ]",
      "}",
    );
  }
  return `${lines.join("\n")}\n`;
}
