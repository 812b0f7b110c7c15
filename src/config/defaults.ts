/**
 * Every setting of Relaybus, with its default and unit. Loading layers these defaults under a
 * YAML file, then environment variables, then command-line flags (see `load-config.ts`).
 */

/** The log engines: the embedded default, and NATS JetStream for several nodes. */
export const LOG_ENGINES = ["sqlite", "jetstream"] as const;
export type LogEngineName = (typeof LOG_ENGINES)[number];

/** Where and how the JetStream engine keeps the log. */
export interface JetStreamLogConfig {
  /** NATS server URLs of the cluster, any of them. Default `["nats://127.0.0.1:4222"]`. */
  servers: string[];
  /** Copies of each bus's stream in the cluster (1, 3 or 5). Default 1. */
  replicas: number;
  /**
   * Prefix of the JetStream streams and subjects Relaybus makes (`RELAYBUS_LOG_<bus>`,
   * `relaybus.log.<bus>.<id>`), so that several Relaybus installations share one cluster.
   * Default `RELAYBUS`.
   */
  streamPrefix: string;
  /**
   * An event id published again to its bus within this window is stored once (JetStream's
   * message deduplication on the CloudEvent id). Default 120 s.
   */
  duplicateWindowSeconds: number;
  /**
   * How long a node may hold an event it claimed for dispatch without word (an ack, or a
   * renewal while its deliveries run) before the cluster hands it to another node: how soon
   * the work of a node that died is taken over. Default 30 s.
   */
  claimSeconds: number;
  /**
   * A delivery still retrying after this long is parked in the cluster (any node takes it
   * back when due) and no longer holds its event's claim. Default 600 s.
   */
  parkAfterSeconds: number;
}

/** How the log makes a commit durable. */
export const DURABILITY_MODES = ["fsync", "fsync-wal-only"] as const;
/**
 * - `fsync`: SQLite `synchronous=FULL`: every commit is fsynced; an ack survives power loss.
 * - `fsync-wal-only`: SQLite `synchronous=NORMAL` in WAL mode: an ack survives a crash of
 *   the process but the last commits may be lost if the machine loses power.
 */
export type DurabilityMode = (typeof DURABILITY_MODES)[number];

/**
 * Which addresses deliveries may connect to, and how much of an answer they read
 * (`delivery.outbound`). Addresses are judged after DNS, on every connection.
 */
export interface OutboundConfig {
  /** Allow targets on loopback addresses (127.0.0.0/8, ::1). Default false. */
  allowLoopback: boolean;
  /**
   * Allow targets on private addresses: 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade
   * NAT), fc00::/7 (unique local). Default false.
   */
  allowPrivate: boolean;
  /**
   * IP addresses or CIDR blocks allowed whatever they are (a private subnet of your own, say).
   * The only way to allow link-local, metadata, multicast or reserved addresses. Default [].
   */
  allowedCidrs: string[];
  /** IP addresses or CIDR blocks always refused, public ones too; wins over every allow. Default []. */
  deniedCidrs: string[];
  /**
   * Most bytes of an answer's body read; past this the connection is closed instead of
   * drained. Default 1,048,576 (1 MiB).
   */
  maxResponseBytes: number;
}

export interface RelaybusConfig {
  server: {
    /** Address to listen on. Default 127.0.0.1 (loopback only). */
    host: string;
    /** TCP port. Default 8080. */
    port: number;
  };
  /**
   * Who may call the HTTP API (issue 8). Auth is on once any API key exists or when
   * `required`; with it off the server must listen on loopback only, unless
   * `allowUnauthenticated`.
   */
  auth: {
    /** Check API keys even while none exists (then only the loopback bootstrap works). Default false. */
    required: boolean;
    /**
     * Serve a non-loopback `server.host` with no API key and auth off: anyone who reaches the
     * port may publish and change rules. Default false (such a start is refused).
     */
    allowUnauthenticated: boolean;
  };
  /** Directory of the SQLite file `relaybus.db`. Default `./data`. */
  dataDir: string;
  /** Directory of rule files (`*.yaml`, `*.yml`). Default `./rules`. */
  rulesDir: string;
  /** Reload the rule files when they change. Default true. */
  watchRules: boolean;
  log: {
    /**
     * `sqlite` (default): the embedded log in the data directory, one machine. `jetstream`:
     * the log in NATS JetStream streams (see `jetstream`), for several nodes over one cluster.
     */
    engine: LogEngineName;
    durability: DurabilityMode;
    /** Events older than this are deleted once dispatched. Default 168 h (7 days). */
    retentionHours: number;
    /** At most this many events share one commit. Default 2,000. */
    groupCommitMaxEvents: number;
    /** The JetStream engine's settings; read only when `engine` is `jetstream`. */
    jetstream: JetStreamLogConfig;
  };
  limits: {
    /** Largest event, as the UTF-8 length of its structured JSON form. Default 262,144 (256 KB). */
    maxEventBytes: number;
    /** Most entries in one PutEvents or CloudEvents batch request. Default 100. */
    maxEntriesPerRequest: number;
    /** Largest request body. Default 4,194,304 bytes (4 MB). */
    maxRequestBytes: number;
    /** Deepest nesting of a JSON document accepted anywhere. Default 64. */
    maxJsonDepth: number;
    /** Largest event pattern, as JSON text. Default 16,384 bytes. */
    maxPatternBytes: number;
    /** Most fields (conditions) in one pattern. Default 256. */
    maxPatternFields: number;
    /** Most alternatives `$or` may fork one pattern into. Default 1,024. */
    maxPatternAlternatives: number;
    /** Largest wildcard score of one pattern (each `*` counts 1, each `contains` 2). Default 40. */
    maxPatternWildcardScore: number;
    /** Most `regex` operators in one pattern. Default 16. */
    maxPatternRegexes: number;
    /** Most values in one list of a pattern (a field's array, an `anything-but` list, a `$and`). Default 1,024. */
    maxPatternValuesPerField: number;
    /** Deepest nesting of a pattern's objects, the root being 1. Default 32. */
    maxPatternDepth: number;
    /** Most `*` in one wildcard value (EventBridge refuses 6). Default 5. */
    maxPatternWildcardStars: number;
    /** Longest `regex` operand, in characters (code points). Default 256. */
    maxPatternRegexLength: number;
    /** Largest JSONata expression. Default 8,192 bytes. */
    maxTransformBytes: number;
    /**
     * Most keys in one JSON object of any document accepted (request bodies, PutEvents
     * `Detail`). Default 10,000. With `maxJsonDepth` it bounds a document's shape; its size is
     * bounded by `maxRequestBytes` and `maxEventBytes`.
     */
    maxJsonKeysPerObject: number;
    /** Most rules on one bus, rule files and API together (EventBridge's default quota). Default 300. */
    maxRulesPerBus: number;
    /** Most event streams, rule files and API together (each holds a runner and connections). Default 100. */
    maxStreams: number;
    /** Most targets of one rule (as EventBridge). Default 5, at most 100. */
    maxTargetsPerRule: number;
    /**
     * Most events per second published to one bus, counted per event (a PutEvents entry, a
     * CloudEvent), with a burst of one second's worth. Default 0: unlimited, and then no
     * per-event work is done. Past it an entry is refused `RateLimited` (429 with
     * `Retry-After` when nothing of the request was stored).
     */
    publishRatePerBus: number;
  };
  delivery: {
    /** Per-attempt timeout of a webhook request. Default 10,000 ms. */
    timeoutMs: number;
    /** Requests in flight across all targets. Default 256. */
    maxInFlight: number;
    /** Keep-alive connections per target origin. Default 32. */
    connectionsPerOrigin: number;
    /**
     * Worker threads that send the webhook requests, taking the HTTP client's CPU off the
     * main thread. Default 1; 0 sends from the main thread. One origin's requests all go to
     * one thread, so more than 1 helps only with several busy origins.
     */
    senderThreads: number;
    /**
     * How long a succeeded delivery (its payload and attempts) is kept for
     * `GET /v1/events/{id}/trace`, counted from its success. Default 72 h. 0 deletes succeeded
     * deliveries at the next retention pass (within a minute). Pending deliveries and dead
     * letters are not affected.
     */
    traceRetentionHours: number;
    /** Outbound safety: the addresses deliveries may reach, and the cap on answers read. */
    outbound: OutboundConfig;
    /**
     * Default circuit breaker of targets (a target's `pacing.circuitBreaker` overrides each
     * field): open after `failureThreshold` consecutive failed attempts (default 10), stay
     * open `openSeconds` (default 30) before one probe, doubling after each failed probe up to
     * `maxOpenSeconds` (default 600).
     */
    circuitBreaker: { failureThreshold: number; openSeconds: number; maxOpenSeconds: number };
    /**
     * Disable a target once it has failed without a success for this long (a target's
     * `pacing.disableAfterFailingSeconds` overrides it). Default 432,000 s (5 days).
     */
    disableAfterFailingSeconds: number;
    /** Default retry policy of targets (AWS's defaults: 185 attempts, 24 h). */
    retry: {
      maxAttempts: number;
      maxAgeSeconds: number;
      baseDelayMs: number;
      factor: number;
      maxDelayMs: number;
    };
  };
  transform: {
    /** Time budget of one JSONata evaluation. Default 100 ms. */
    timeoutMs: number;
  };
  /** Usage meters and their rollup (src/metering/). */
  metering: {
    /**
     * Count usage: publishes (from the log), delivery attempts, replays and redrives.
     * Default true. Off, nothing is counted, and `GET /v1/usage` reports what was counted before.
     */
    enabled: boolean;
    /**
     * When hourly usage is rolled up into days (cron, UTC; 5 or 6 fields). Default
     * "5 * * * *": every hour at minute 5. Reports roll up before answering anyway.
     */
    rollupCron: string;
  };
  /** Event streams and their capacity (src/streams/). */
  streams: {
    /** Events per second one CU carries. Default 5,000. */
    cuEventsPerSecond: number;
    /** Bytes per second one CU carries (the events' structured JSON). Default 52,428,800 (50 MB). */
    cuBytesPerSecond: number;
    /** How often the scaler looks at each stream's backlog and throttling, ms. Default 10,000. */
    scaleIntervalMs: number;
    /** Looks in a row with spare capacity before the scaler gives one CU back. Default 3. */
    scaleDownAfterIntervals: number;
    /** The largest `maxCU` a stream may ask for. Default 64. */
    maxCU: number;
  };
  /** Prices and billing periods: how usage becomes priced records (src/metering/). */
  billing: BillingConfig;
  /** The audit log of changes (`GET /v1/audit`). */
  audit: {
    /** Entries older than this are deleted by the retention pass (once a minute). Default 365 days. */
    retentionDays: number;
  };
}

/**
 * Prices per meter, as decimal strings (`"5.64"`, never a YAML number: money is never a
 * float). The event meters are priced per million 64 KB units; `stream-cu-hours` per
 * CU-hour; `stream-idle` per idle day. `replay` and `redrive` are priced like `push` unless
 * set. Defaults: Alibaba Cloud EventBridge's public list, in CNY.
 */
export interface BillingPrices {
  /** Publishes to a custom bus, per million units (system buses are free). Default "5.64". */
  publish: string;
  /** Pushes to targets, every attempt, per million units. Default "1.29". */
  push: string;
  /** Replayed deliveries, per million units. Default: the `push` price. */
  replay?: string;
  /** Redriven dead letters, per million units. Default: the `push` price. */
  redrive?: string;
  /** Stream events read, per million units. Default "2.8". */
  "stream-events": string;
  /** Stream capacity, per CU-hour. Default "0.24". */
  "stream-cu-hours": string;
  /** A stream without inflow for a month, per day. Default "1". */
  "stream-idle": string;
}

export interface BillingConfig {
  /** ISO 4217 code of the prices and amounts. Amounts round to its minor unit. Default "CNY". */
  currency: string;
  prices: BillingPrices;
  /**
   * When the billing job runs (cron, UTC; 5 or 6 fields): it rolls the daily usage up and
   * closes every ended period not closed yet. Default "0 0 1 * *": midnight UTC on the 1st,
   * closing the month before.
   */
  periodCron: string;
  /**
   * The tenant each bus is billed to (`{bus: tenant}`): line items of the bus (its
   * publishes, its rules' and targets' pushes, replays and redrives) carry it, and records
   * total per tenant. Buses not listed have no tenant (""). Default {}.
   */
  tenants: Record<string, string>;
}

/** The defaults. */
export const DEFAULT_CONFIG: RelaybusConfig = {
  server: { host: "127.0.0.1", port: 8080 },
  auth: { required: false, allowUnauthenticated: false },
  dataDir: "./data",
  rulesDir: "./rules",
  watchRules: true,
  log: {
    engine: "sqlite",
    durability: "fsync",
    retentionHours: 168,
    groupCommitMaxEvents: 2000,
    jetstream: {
      servers: ["nats://127.0.0.1:4222"],
      replicas: 1,
      streamPrefix: "RELAYBUS",
      duplicateWindowSeconds: 120,
      claimSeconds: 30,
      parkAfterSeconds: 600,
    },
  },
  limits: {
    maxEventBytes: 262_144,
    maxEntriesPerRequest: 100,
    maxRequestBytes: 4_194_304,
    maxJsonDepth: 64,
    maxPatternBytes: 16_384,
    maxPatternFields: 256,
    maxPatternAlternatives: 1_024,
    maxPatternWildcardScore: 40,
    maxPatternRegexes: 16,
    maxPatternValuesPerField: 1_024,
    maxPatternDepth: 32,
    maxPatternWildcardStars: 5,
    maxPatternRegexLength: 256,
    maxTransformBytes: 8_192,
    maxJsonKeysPerObject: 10_000,
    maxRulesPerBus: 300,
    maxStreams: 100,
    maxTargetsPerRule: 5,
    publishRatePerBus: 0,
  },
  delivery: {
    timeoutMs: 10_000,
    maxInFlight: 256,
    connectionsPerOrigin: 32,
    senderThreads: 1,
    traceRetentionHours: 72,
    outbound: {
      allowLoopback: false,
      allowPrivate: false,
      allowedCidrs: [],
      deniedCidrs: [],
      maxResponseBytes: 1_048_576,
    },
    circuitBreaker: { failureThreshold: 10, openSeconds: 30, maxOpenSeconds: 600 },
    disableAfterFailingSeconds: 432_000,
    retry: {
      maxAttempts: 185,
      maxAgeSeconds: 86_400,
      baseDelayMs: 1_000,
      factor: 2,
      maxDelayMs: 300_000,
    },
  },
  transform: { timeoutMs: 100 },
  metering: { enabled: true, rollupCron: "5 * * * *" },
  audit: { retentionDays: 365 },
  streams: {
    cuEventsPerSecond: 5_000,
    cuBytesPerSecond: 52_428_800,
    scaleIntervalMs: 10_000,
    scaleDownAfterIntervals: 3,
    maxCU: 64,
  },
  billing: {
    currency: "CNY",
    prices: {
      publish: "5.64",
      push: "1.29",
      "stream-events": "2.8",
      "stream-cu-hours": "0.24",
      "stream-idle": "1",
    },
    periodCron: "0 0 1 * *",
    tenants: {},
  },
};
