/**
 * The schema of the state file, `<dataDir>/relaybus-state.db`: buses, API rules, the
 * dispatcher's checkpoints, pending deliveries, dead letters and targets' signing secrets.
 * It is written on the main thread, synchronously, with `synchronous=NORMAL` (see
 * `open-sqlite-storage.ts` for why that is safe).
 */
import { schemaVersionOf, type Migration } from "./migrations.js";

/** Every migration of the state file, oldest first. */
export const STATE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "catalog, dispatch checkpoints, delivery state and dead letters",
    sql: `
      CREATE TABLE buses (
        name          TEXT PRIMARY KEY,
        description   TEXT,
        created_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE rules (
        bus           TEXT    NOT NULL,
        name          TEXT    NOT NULL,
        definition    TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (bus, name)
      ) WITHOUT ROWID;

      CREATE TABLE dispatch_checkpoints (
        bus            TEXT PRIMARY KEY,
        through_offset INTEGER NOT NULL,
        updated_at_ms  INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE deliveries (
        id                   TEXT    NOT NULL UNIQUE,
        bus                  TEXT    NOT NULL,
        offset               INTEGER NOT NULL,
        event_id             TEXT    NOT NULL,
        rule                 TEXT    NOT NULL,
        target_id            TEXT    NOT NULL,
        event_received_at_ms INTEGER NOT NULL,
        created_at_ms        INTEGER NOT NULL,
        next_attempt_at_ms   INTEGER NOT NULL,
        retry                TEXT    NOT NULL,
        attempts             TEXT    NOT NULL,
        request              TEXT    NOT NULL
      );
      CREATE INDEX deliveries_due ON deliveries (next_attempt_at_ms);

      CREATE TABLE dead_letters (
        id                   TEXT    NOT NULL UNIQUE,
        bus                  TEXT    NOT NULL,
        offset               INTEGER NOT NULL,
        event_id             TEXT    NOT NULL,
        rule                 TEXT    NOT NULL,
        target_id            TEXT    NOT NULL,
        event_received_at_ms INTEGER NOT NULL,
        created_at_ms        INTEGER NOT NULL,
        next_attempt_at_ms   INTEGER NOT NULL,
        reason               TEXT    NOT NULL,
        dead_at_ms           INTEGER NOT NULL,
        retry                TEXT    NOT NULL,
        attempts             TEXT    NOT NULL,
        request              TEXT    NOT NULL
      );
      CREATE INDEX dead_letters_dead_at ON dead_letters (dead_at_ms);
      CREATE INDEX dead_letters_bus_dead_at ON dead_letters (bus, dead_at_ms);
    `,
  },
  {
    version: 2,
    description: "signing secrets of targets (Standard Webhooks)",
    // Keyed by the target's address, not by a rule row: rules from files have none. The
    // material is stored as created (the file is the service's own state, like its rules).
    // A rowid table: secrets created in the same millisecond list in creation order by it.
    sql: `
      CREATE TABLE target_secrets (
        bus           TEXT    NOT NULL,
        rule          TEXT    NOT NULL,
        target_id     TEXT    NOT NULL,
        id            TEXT    NOT NULL,
        kind          TEXT    NOT NULL CHECK (kind IN ('hmac-sha256', 'ed25519')),
        material      TEXT    NOT NULL,
        public_key    TEXT,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER,
        PRIMARY KEY (bus, rule, target_id, id)
      );
    `,
  },
  {
    version: 3,
    description: "succeeded deliveries kept for traces; order keys; deliveries by event",
    // A delivery that succeeds moves to succeeded_deliveries, kept until the trace retention
    // prunes it, for `GET /v1/events/{id}/trace` (its payload and attempts). That table is
    // written once per delivery on the hot path, so it carries only what a trace reads and
    // one index: no unique id (a dispatch repeated after a crash may store a delivery twice;
    // the trace shows it once), no time index (pruning walks rowids, which grow with time).
    // `leased` tells a lease (a delivery held by the engine) from a retry's time, so that
    // leases left by a process that stopped can be ended when the file opens again.
    // The request's body has its own column (`request` is the rest of it): inside the JSON
    // it would be escaped, at a cost per delivery. NULL when the body was the event's stored
    // JSON (structured mode): the log holds it, and a copy per delivery would double the
    // bytes written per event.
    sql: `
      ALTER TABLE deliveries ADD COLUMN order_key TEXT;
      ALTER TABLE deliveries ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE dead_letters ADD COLUMN order_key TEXT;
      CREATE INDEX deliveries_event ON deliveries (event_id);
      CREATE INDEX dead_letters_event ON dead_letters (event_id);
      CREATE TABLE succeeded_deliveries (
        id                   TEXT    NOT NULL,
        bus                  TEXT    NOT NULL,
        offset               INTEGER NOT NULL,
        event_id             TEXT    NOT NULL,
        rule                 TEXT    NOT NULL,
        target_id            TEXT    NOT NULL,
        event_received_at_ms INTEGER NOT NULL,
        created_at_ms        INTEGER NOT NULL,
        next_attempt_at_ms   INTEGER NOT NULL,
        finished_at_ms       INTEGER NOT NULL,
        retry                TEXT    NOT NULL,
        attempts             TEXT    NOT NULL,
        request              TEXT    NOT NULL,
        order_key            TEXT,
        body                 TEXT
      );
      CREATE INDEX succeeded_deliveries_event ON succeeded_deliveries (event_id);
    `,
  },
  {
    version: 4,
    description: "connections (authorization, headers and query parameters of targets)",
    // Connections created through the API, as sent: `env:NAME` secrets stay references and
    // are read from the environment when used; literal secrets are stored like the rules.
    sql: `
      CREATE TABLE connections (
        name          TEXT    PRIMARY KEY,
        definition    TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    description: "target states (disabled targets and why, failing since)",
    // Keyed by the target's address like target_secrets (file rules have no rule row). A
    // row is written only on a transition, never per attempt.
    sql: `
      CREATE TABLE target_states (
        bus              TEXT    NOT NULL,
        rule             TEXT    NOT NULL,
        target_id        TEXT    NOT NULL,
        state            TEXT    NOT NULL CHECK (state IN ('enabled', 'disabled')),
        reason           TEXT,
        cause            TEXT    CHECK (cause IN ('gone', 'failing', 'api')),
        disabled_at_ms   INTEGER,
        failing_since_ms INTEGER,
        updated_at_ms    INTEGER NOT NULL,
        PRIMARY KEY (bus, rule, target_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 6,
    description: "archives and replays",
    // An archive's events hang off its internal id, not its name: deleting an archive marks
    // it `deleting` (its name is free at once) and its events go in batches afterwards, so a
    // new archive of the same name never sees them. Replays count their pending deliveries by
    // order key (`replay:<name>:...`, a range on the index) to keep their backlog bounded.
    sql: `
      CREATE TABLE archives (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        name           TEXT    NOT NULL,
        bus            TEXT    NOT NULL,
        description    TEXT,
        pattern        TEXT,
        retention_days INTEGER NOT NULL,
        state          TEXT    NOT NULL CHECK (state IN ('enabled', 'deleting')),
        through_offset INTEGER NOT NULL,
        event_count    INTEGER NOT NULL DEFAULT 0,
        size_bytes     INTEGER NOT NULL DEFAULT 0,
        created_at_ms  INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX archives_name ON archives (name) WHERE state = 'enabled';

      CREATE TABLE archived_events (
        archive_id     INTEGER NOT NULL,
        offset         INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        size_bytes     INTEGER NOT NULL,
        units          INTEGER NOT NULL,
        json           TEXT    NOT NULL
      );
      CREATE UNIQUE INDEX archived_events_offset ON archived_events (archive_id, offset);
      CREATE INDEX archived_events_received ON archived_events (archive_id, received_at_ms);

      CREATE TABLE replays (
        name               TEXT    PRIMARY KEY,
        description        TEXT,
        source_archive     TEXT,
        archive_id         INTEGER,
        bus                TEXT    NOT NULL,
        from_ms            INTEGER NOT NULL,
        to_ms              INTEGER NOT NULL,
        end_offset         INTEGER NOT NULL,
        destination_bus    TEXT    NOT NULL,
        destination_rule   TEXT,
        destination_target TEXT,
        state              TEXT    NOT NULL CHECK (state IN ('running', 'completed', 'cancelled', 'failed')),
        total              INTEGER NOT NULL,
        replayed           INTEGER NOT NULL,
        deliveries         INTEGER NOT NULL,
        last_offset        INTEGER NOT NULL,
        started_at_ms      INTEGER NOT NULL,
        ended_at_ms        INTEGER,
        error              TEXT
      ) WITHOUT ROWID;

      -- Counts a replay's pending deliveries (a range of order keys), and finds the ordered
      -- deliveries waiting for a retry that hold back the rest of their key (see leaseDue).
      CREATE INDEX deliveries_pending_order_key ON deliveries (order_key, leased, next_attempt_at_ms)
        WHERE order_key IS NOT NULL;
    `,
  },
  {
    version: 7,
    description: "usage: hourly and daily counts per meter and resource, and the meters' checkpoints",
    // One row per (hour, meter, resource). Resources not of a meter's kind are '' (not NULL),
    // so they take part in the primary key. `quantity` is what the meter counts: events,
    // attempts, or CU-milli-hours for stream CUs; `units` the 64 KB units (ceil(bytes/65536),
    // at least 1 per event or attempt).
    sql: `
      CREATE TABLE usage_hourly (
        hour_ms  INTEGER NOT NULL,
        meter    TEXT    NOT NULL,
        bus      TEXT    NOT NULL DEFAULT '',
        rule     TEXT    NOT NULL DEFAULT '',
        target   TEXT    NOT NULL DEFAULT '',
        stream   TEXT    NOT NULL DEFAULT '',
        quantity INTEGER NOT NULL,
        units    INTEGER NOT NULL,
        PRIMARY KEY (hour_ms, meter, bus, rule, target, stream)
      ) WITHOUT ROWID;

      CREATE TABLE usage_daily (
        day_ms   INTEGER NOT NULL,
        meter    TEXT    NOT NULL,
        bus      TEXT    NOT NULL DEFAULT '',
        rule     TEXT    NOT NULL DEFAULT '',
        target   TEXT    NOT NULL DEFAULT '',
        stream   TEXT    NOT NULL DEFAULT '',
        quantity INTEGER NOT NULL,
        units    INTEGER NOT NULL,
        PRIMARY KEY (day_ms, meter, bus, rule, target, stream)
      ) WITHOUT ROWID;

      CREATE TABLE meter_checkpoints (
        name          TEXT    PRIMARY KEY,
        through       INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 8,
    description: "billing periods and their records",
    // A period row is written when the period is closed, in one transaction with its
    // records; open periods are computed on the fly. Amounts are decimal text with the
    // currency's minor-unit places, and also integer minor units (`amount_minor`), so that
    // totals per bus, stream or tenant are exact sums in SQL. Once closed, nothing changes:
    // the triggers refuse updates and deletes of records and of closed periods.
    sql: `
      CREATE TABLE billing_periods (
        period       TEXT    PRIMARY KEY,
        from_ms      INTEGER NOT NULL,
        to_ms        INTEGER NOT NULL,
        state        TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
        closed_at_ms INTEGER,
        currency     TEXT    NOT NULL,
        minor_units  INTEGER NOT NULL,
        total_minor  INTEGER NOT NULL DEFAULT 0,
        line_items   INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;

      CREATE TABLE billing_records (
        period        TEXT    NOT NULL,
        line          INTEGER NOT NULL,
        usage_period  TEXT    NOT NULL,
        resource_kind TEXT    NOT NULL CHECK (resource_kind IN ('bus', 'rule', 'target', 'stream', 'service')),
        resource      TEXT    NOT NULL,
        bus           TEXT    NOT NULL DEFAULT '',
        rule          TEXT    NOT NULL DEFAULT '',
        target        TEXT    NOT NULL DEFAULT '',
        stream        TEXT    NOT NULL DEFAULT '',
        tenant        TEXT    NOT NULL DEFAULT '',
        meter         TEXT    NOT NULL,
        quantity      INTEGER NOT NULL,
        units         INTEGER NOT NULL,
        unit_price    TEXT    NOT NULL,
        price_basis   TEXT    NOT NULL CHECK (price_basis IN ('per-million-units', 'per-cu-hour', 'per-day')),
        amount        TEXT    NOT NULL,
        amount_minor  INTEGER NOT NULL,
        currency      TEXT    NOT NULL,
        PRIMARY KEY (period, line)
      ) WITHOUT ROWID;
      CREATE INDEX billing_records_usage_period ON billing_records (usage_period);

      CREATE TRIGGER billing_records_no_update BEFORE UPDATE ON billing_records
        BEGIN SELECT RAISE(ABORT, 'billing records never change'); END;
      CREATE TRIGGER billing_records_no_delete BEFORE DELETE ON billing_records
        BEGIN SELECT RAISE(ABORT, 'billing records never change'); END;
      CREATE TRIGGER billing_periods_closed_no_update BEFORE UPDATE ON billing_periods
        WHEN OLD.state = 'closed'
        BEGIN SELECT RAISE(ABORT, 'a closed billing period never changes'); END;
      CREATE TRIGGER billing_periods_closed_no_delete BEFORE DELETE ON billing_periods
        WHEN OLD.state = 'closed'
        BEGIN SELECT RAISE(ABORT, 'a closed billing period never changes'); END;
    `,
  },
  {
    version: 9,
    description: "system buses (metered, priced at 0)",
    // A bus created with `system: true`, as a cloud service's own buses are: its publishes
    // are counted like any bus's, and billing prices them at 0.
    sql: `
      ALTER TABLE buses ADD COLUMN system INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 10,
    description: "API keys (hashed secrets, sealed SigV4 secrets, scopes)",
    // Keys are never deleted, only revoked, so an id is never reused.
    sql: `
      CREATE TABLE api_keys (
        id                TEXT    PRIMARY KEY,
        name              TEXT    NOT NULL,
        scopes            TEXT    NOT NULL,
        secret_hash       TEXT    NOT NULL,
        aws_secret_sealed TEXT    NOT NULL,
        created_at_ms     INTEGER NOT NULL,
        expires_at_ms     INTEGER,
        revoked_at_ms     INTEGER,
        last_used_at_ms   INTEGER
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 11,
    description: "audit log of changes (who, when, what, before and after)",
    // AUTOINCREMENT: an id is never reused, even for the newest row deleted, so `before=<id>`
    // pages stay exact. The actor is split so that `?actor=` matches a kind, a key id or a name.
    sql: `
      CREATE TABLE audit_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms       INTEGER NOT NULL,
        actor_kind  TEXT    NOT NULL CHECK (actor_kind IN ('api-key', 'local', 'anonymous', 'rule-files')),
        actor_id    TEXT,
        actor_name  TEXT,
        action      TEXT    NOT NULL,
        resource    TEXT    NOT NULL,
        before_json TEXT,
        after_json  TEXT,
        request_id  TEXT,
        outcome     TEXT    NOT NULL CHECK (outcome IN ('succeeded', 'refused'))
      );
      CREATE INDEX audit_log_at ON audit_log (at_ms);
    `,
  },
  {
    version: 12,
    description: "API keys' publish rate limit (events per second)",
    // NULL: the key publishes without a rate limit of its own (the bus's may still apply).
    sql: `
      ALTER TABLE api_keys ADD COLUMN rate_per_second REAL;
    `,
  },
  {
    version: 13,
    description: "event streams: API definitions, runtime (position, counters, CU), capacity history, dead letters",
    sql: `
      CREATE TABLE stream_definitions (
        name            TEXT    PRIMARY KEY,
        definition_json TEXT    NOT NULL,
        created_at_ms   INTEGER NOT NULL,
        updated_at_ms   INTEGER NOT NULL
      );
      CREATE TABLE stream_runtimes (
        name                  TEXT    PRIMARY KEY,
        desired               TEXT    NOT NULL CHECK (desired IN ('running', 'paused')),
        state                 TEXT    NOT NULL CHECK (state IN ('running', 'paused', 'failed')),
        reason                TEXT,
        position              TEXT,
        current_cu            INTEGER NOT NULL,
        events_in             INTEGER NOT NULL DEFAULT 0,
        events_out            INTEGER NOT NULL DEFAULT 0,
        events_filtered       INTEGER NOT NULL DEFAULT 0,
        events_dead_lettered  INTEGER NOT NULL DEFAULT 0,
        bytes_out             INTEGER NOT NULL DEFAULT 0,
        retries               INTEGER NOT NULL DEFAULT 0,
        throttled_ms          INTEGER NOT NULL DEFAULT 0,
        -- CU x ms of capacity not yet billed as whole CU-milli-hours (below 3,600).
        cu_ms_unbilled        INTEGER NOT NULL DEFAULT 0,
        last_event_at_ms      INTEGER,
        -- The end of the last UTC day the stream-idle meter counted (0: none yet).
        idle_metered_through_ms INTEGER NOT NULL DEFAULT 0,
        created_at_ms         INTEGER NOT NULL,
        updated_at_ms         INTEGER NOT NULL
      );
      CREATE TABLE stream_cu_changes (
        id      INTEGER PRIMARY KEY,
        stream  TEXT    NOT NULL,
        at_ms   INTEGER NOT NULL,
        from_cu INTEGER NOT NULL,
        to_cu   INTEGER NOT NULL,
        reason  TEXT    NOT NULL
      );
      CREATE INDEX stream_cu_changes_stream ON stream_cu_changes (stream, id);
      CREATE TABLE stream_dead_letters (
        id           INTEGER PRIMARY KEY,
        stream       TEXT    NOT NULL,
        event_id     TEXT    NOT NULL,
        event_json   TEXT    NOT NULL,
        reason       TEXT    NOT NULL,
        attempts     INTEGER NOT NULL,
        -- 'sink': the event as written (after the transform); 'transform': the event as read.
        stage        TEXT    NOT NULL CHECK (stage IN ('sink', 'transform')),
        failed_at_ms INTEGER NOT NULL
      );
      CREATE INDEX stream_dead_letters_stream ON stream_dead_letters (stream, id);
    `,
  },
  {
    version: 14,
    description: "bus scheduler: the position of each schedule's last published fire",
    // position: the schedule source's position, the ISO 8601 time of the last fire published.
    sql: `
      CREATE TABLE schedule_positions (
        name           TEXT    PRIMARY KEY,
        position       TEXT    NOT NULL,
        recorded_at_ms INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 15,
    description: "shared state: changes made on this node, waiting to be sent to the cluster",
    // value: the entity's JSON, or NULL for a deletion. seq orders the changes as they were made.
    sql: `
      CREATE TABLE shared_state_outbox (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        key           TEXT    NOT NULL,
        value         TEXT,
        created_at_ms INTEGER NOT NULL
      );
    `,
  },
  {
    version: 16,
    description: "usage counted by the other nodes of a cluster, and this node's identity in it",
    // origin: '' for what this node counted, else the id of the node that did (its rows, as
    // shared through the cluster, each the node's running total). Reports sum over origins.
    sql: `
      CREATE TABLE usage_hourly_by_origin (
        hour_ms  INTEGER NOT NULL,
        meter    TEXT    NOT NULL,
        bus      TEXT    NOT NULL DEFAULT '',
        rule     TEXT    NOT NULL DEFAULT '',
        target   TEXT    NOT NULL DEFAULT '',
        stream   TEXT    NOT NULL DEFAULT '',
        origin   TEXT    NOT NULL DEFAULT '',
        quantity INTEGER NOT NULL,
        units    INTEGER NOT NULL,
        PRIMARY KEY (hour_ms, meter, bus, rule, target, stream, origin)
      ) WITHOUT ROWID;
      INSERT INTO usage_hourly_by_origin (hour_ms, meter, bus, rule, target, stream, origin, quantity, units)
        SELECT hour_ms, meter, bus, rule, target, stream, '', quantity, units FROM usage_hourly;
      DROP TABLE usage_hourly;
      ALTER TABLE usage_hourly_by_origin RENAME TO usage_hourly;
      CREATE TABLE cluster_node (id TEXT NOT NULL);
    `,
  },
];

/** The state file version this code writes. */
export const STATE_SCHEMA_VERSION: number = schemaVersionOf(STATE_MIGRATIONS);
