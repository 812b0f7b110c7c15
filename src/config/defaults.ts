/**
 * Every setting of Relaybus, with its default and unit. Loading layers these defaults under a
 * YAML file, then environment variables, then command-line flags (see `load-config.ts`).
 */

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
  /** Directory of the SQLite file `relaybus.db`. Default `./data`. */
  dataDir: string;
  /** Directory of rule files (`*.yaml`, `*.yml`). Default `./rules`. */
  rulesDir: string;
  /** Reload the rule files when they change. Default true. */
  watchRules: boolean;
  log: {
    /** Only `sqlite` for now. */
    engine: "sqlite";
    durability: DurabilityMode;
    /** Events older than this are deleted once dispatched. Default 168 h (7 days). */
    retentionHours: number;
    /** At most this many events share one commit. Default 2,000. */
    groupCommitMaxEvents: number;
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
    /** Largest JSONata expression. Default 8,192 bytes. */
    maxTransformBytes: number;
  };
  delivery: {
    /** Per-attempt timeout of a webhook request. Default 10,000 ms. */
    timeoutMs: number;
    /** Requests in flight across all targets. Default 256. */
    maxInFlight: number;
    /** Keep-alive connections per target origin. Default 32. */
    connectionsPerOrigin: number;
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
}

/** The defaults. */
export const DEFAULT_CONFIG: RelaybusConfig = {
  server: { host: "127.0.0.1", port: 8080 },
  dataDir: "./data",
  rulesDir: "./rules",
  watchRules: true,
  log: {
    engine: "sqlite",
    durability: "fsync",
    retentionHours: 168,
    groupCommitMaxEvents: 2000,
  },
  limits: {
    maxEventBytes: 262_144,
    maxEntriesPerRequest: 100,
    maxRequestBytes: 4_194_304,
    maxJsonDepth: 64,
    maxPatternBytes: 16_384,
    maxTransformBytes: 8_192,
  },
  delivery: {
    timeoutMs: 10_000,
    maxInFlight: 256,
    connectionsPerOrigin: 32,
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
};
