import { authConfigFromEnv, defaultAuthConfig, tlsConfigFromEnv, type AuthConfig, type TlsConfig } from "./auth/auth-config.js";

/**
 * Server configuration, read from environment variables. Every variable has a default so
 * that `npm start` works with nothing set; the README lists them all.
 */
export interface ServerConfig {
  /** `JOBWIRE_HOST`: address to listen on. Default `127.0.0.1`. */
  host: string;
  /** `JOBWIRE_PORT`: port for gRPC, gRPC-Web and Connect. Default 7233; 0 picks a free port. */
  port: number;
  /**
   * `DATABASE_URL`: Postgres to use. Unset: an embedded Postgres is started with its data in
   * `dataDir`.
   */
  databaseUrl: string | undefined;
  /** `JOBWIRE_DATA_DIR`: where the embedded Postgres keeps its data. Default `.jobwire/pgdata`. */
  dataDir: string;
  /** `JOBWIRE_EMBEDDED_PG_PORT`: port of the embedded Postgres. Default 54329. */
  embeddedPostgresPort: number;
  /** `JOBWIRE_DB_POOL_SIZE`: connections in the Postgres pool. Default 20. */
  dbPoolSize: number;
  /**
   * `JOBWIRE_DB_CONNECTION_LIFETIME_S`: a pooled connection is replaced after this long
   * (once it is back in the pool), so that the plans it made for the named statements follow
   * the tables' statistics (see `store/orm.ts`). Default 600.
   */
  dbConnectionLifetimeS: number;
  /** `JOBWIRE_LOG_LEVEL`: pino level (`trace` … `fatal`, or `silent`). Default `info`. */
  logLevel: string;
  /**
   * `JOBWIRE_DEFAULT_PRINCIPAL`: the principal every request acts as (an admin) while
   * authentication is off (`JOBWIRE_AUTH=off`). Default `local`.
   */
  defaultPrincipal: string;
  /** `JOBWIRE_MAX_REQUEST_BYTES`: largest accepted request message. Default 32 MiB. */
  maxRequestBytes: number;
  /** `JOBWIRE_MAX_BATCH_SIZE`: most jobs in one EnqueueBatch. Default 10,000. */
  maxBatchSize: number;
  /**
   * `JOBWIRE_MAX_METADATA_BYTES`: largest request metadata (all headers, counted as HTTP/2
   * does: name and value bytes plus 32 per entry). Default 16 KiB. Past it a call fails with
   * RESOURCE_EXHAUSTED; far past it the HTTP layer refuses the request before it is a call
   * (431 on HTTP/1.1 past twice the limit and 8 KiB more; HTTP/2 header blocks past 64 KiB
   * are refused with a reset stream). At most 64 KiB.
   */
  maxMetadataBytes: number;
  /**
   * `JOBWIRE_MAX_STREAMS_PER_PRINCIPAL`: most server streams (LeaseJobs, StreamEvents,
   * Health.Watch, the SSE endpoint) one principal may have open on one replica. Default 1,000.
   * Until API keys exist every request is the default principal, so this bounds them all.
   */
  maxStreamsPerPrincipal: number;
  /**
   * `JOBWIRE_MAX_STREAMS_PER_CONNECTION`: most concurrent HTTP/2 streams (calls) on one
   * connection, announced to clients in SETTINGS_MAX_CONCURRENT_STREAMS. Default 1,000.
   */
  maxStreamsPerConnection: number;
  /**
   * `JOBWIRE_EVENT_READ_BATCH`: events an event stream reads from the database at a time,
   * and so the most it holds in memory for a reader that does not keep up. Default 500.
   */
  eventReadBatch: number;
  /**
   * `JOBWIRE_HANDSHAKE_TIMEOUT_MS`: how long a new connection may take to send the first
   * bytes that tell HTTP/1.1 from HTTP/2, and an HTTP/1.1 request its headers. Default 10 s.
   */
  handshakeTimeoutMs: number;
  /** `JOBWIRE_SHUTDOWN_GRACE_MS`: how long in-flight requests may finish on shutdown. Default 10 s. */
  shutdownGraceMs: number;
  /**
   * `JOBWIRE_CANCEL_GRACE_MS`: how long a worker has to stop a running job after a cancel
   * request before its lease is revoked and the job cancelled. Default 30 s.
   */
  cancelGraceMs: number;
  /**
   * `JOBWIRE_FALLBACK_POLL_MS`: longest interval between maintenance passes and claim
   * retries when no notification arrives; wake-ups normally come from LISTEN/NOTIFY and from
   * the next due time. Default 5 s.
   */
  fallbackPollMs: number;
  /**
   * `JOBWIRE_EVENT_RECHECK_MS`: how often a caught-up event stream reads again without a
   * wake-up. NOTIFY wakes streams at once; this bounds the wait for events held back behind
   * a transaction that commits without notifying. Default 1 s.
   */
  eventRecheckMs: number;
  /** `JOBWIRE_KEEPALIVE_MS`: how often an idle LeaseJobs stream sends a keep-alive. Default 15 s. */
  keepAliveMs: number;
  /**
   * `JOBWIRE_RETENTION_MS`: how long finished jobs are kept, unless their queue says
   * otherwise (UpdateQueue). Default 7 days.
   */
  retentionMs: number;
  /**
   * `JOBWIRE_IDEMPOTENCY_WINDOW_MS`: how long after a job finished its idempotency key still
   * deduplicates enqueues, unless its queue says otherwise (UpdateQueue). 0 frees the key
   * when the job finishes. Default 24 hours; retention deleting the job frees it in any case.
   */
  idempotencyWindowMs: number;
  /**
   * `JOBWIRE_EVENT_RETENTION_MS`: how long lifecycle events are kept, and with them finished
   * webhook deliveries and finished batches whose jobs retention deleted. Default 30 days.
   */
  eventRetentionMs: number;
  /** `JOBWIRE_RETENTION_INTERVAL_MS`: how often retention runs. Default 60 s. */
  retentionIntervalMs: number;
  /**
   * `JOBWIRE_WEBHOOK_ALLOW_CIDRS`: comma-separated CIDRs webhooks may reach although they
   * are loopback, private or link-local (e.g. `127.0.0.1/32`). Default: none.
   */
  webhookAllowCidrs: string[];
  /** `JOBWIRE_WEBHOOK_TIMEOUT_MS`: how long one delivery attempt may take. Default 10 s. */
  webhookTimeoutMs: number;
  /** `JOBWIRE_WEBHOOK_MAX_ATTEMPTS`: attempts before a delivery is given up. Default 10. */
  webhookMaxAttempts: number;
  /** `JOBWIRE_WEBHOOK_BACKOFF_MS`: delay before the first retry, doubling after. Default 1 s. */
  webhookBackoffMs: number;
  /** API keys: `JOBWIRE_AUTH`, `JOBWIRE_BOOTSTRAP_KEY_FILE` (see {@link AuthConfig}). */
  auth: AuthConfig;
  /** TLS on the listening port: `JOBWIRE_TLS_*` (see {@link TlsConfig}). Default: none. */
  tls: TlsConfig | undefined;
}

/** The documented defaults, also used by tests that start servers in-process. */
export const defaultServerConfig: ServerConfig = {
  host: "127.0.0.1",
  port: 7233,
  databaseUrl: undefined,
  dataDir: ".jobwire/pgdata",
  embeddedPostgresPort: 54329,
  dbPoolSize: 20,
  dbConnectionLifetimeS: 600,
  logLevel: "info",
  defaultPrincipal: "local",
  maxRequestBytes: 32 * 1024 * 1024,
  maxBatchSize: 10_000,
  maxMetadataBytes: 16 * 1024,
  maxStreamsPerPrincipal: 1_000,
  maxStreamsPerConnection: 1_000,
  eventReadBatch: 500,
  handshakeTimeoutMs: 10_000,
  shutdownGraceMs: 10_000,
  cancelGraceMs: 30_000,
  fallbackPollMs: 5_000,
  eventRecheckMs: 1_000,
  keepAliveMs: 15_000,
  retentionMs: 7 * 86_400_000,
  idempotencyWindowMs: 86_400_000,
  eventRetentionMs: 30 * 86_400_000,
  retentionIntervalMs: 60_000,
  webhookAllowCidrs: [],
  webhookTimeoutMs: 10_000,
  webhookMaxAttempts: 10,
  webhookBackoffMs: 1_000,
  auth: defaultAuthConfig,
  tls: undefined,
};

/** Reads the configuration from `env`, failing loudly on values that do not parse. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const d = defaultServerConfig;
  return {
    host: env.JOBWIRE_HOST || d.host,
    port: intFromEnv(env, "JOBWIRE_PORT", d.port, 0, 65535),
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: env.JOBWIRE_DATA_DIR || d.dataDir,
    embeddedPostgresPort: intFromEnv(env, "JOBWIRE_EMBEDDED_PG_PORT", d.embeddedPostgresPort, 1, 65535),
    dbPoolSize: intFromEnv(env, "JOBWIRE_DB_POOL_SIZE", d.dbPoolSize, 1, 1000),
    dbConnectionLifetimeS: intFromEnv(env, "JOBWIRE_DB_CONNECTION_LIFETIME_S", d.dbConnectionLifetimeS, 1, 86_400),
    logLevel: env.JOBWIRE_LOG_LEVEL || d.logLevel,
    defaultPrincipal: env.JOBWIRE_DEFAULT_PRINCIPAL || d.defaultPrincipal,
    maxRequestBytes: intFromEnv(env, "JOBWIRE_MAX_REQUEST_BYTES", d.maxRequestBytes, 1024, 2 ** 31 - 1),
    maxBatchSize: intFromEnv(env, "JOBWIRE_MAX_BATCH_SIZE", d.maxBatchSize, 1, 1_000_000),
    maxMetadataBytes: intFromEnv(env, "JOBWIRE_MAX_METADATA_BYTES", d.maxMetadataBytes, 1024, 64 * 1024),
    maxStreamsPerPrincipal: intFromEnv(env, "JOBWIRE_MAX_STREAMS_PER_PRINCIPAL", d.maxStreamsPerPrincipal, 1, 1_000_000),
    maxStreamsPerConnection: intFromEnv(env, "JOBWIRE_MAX_STREAMS_PER_CONNECTION", d.maxStreamsPerConnection, 1, 2 ** 31 - 1),
    eventReadBatch: intFromEnv(env, "JOBWIRE_EVENT_READ_BATCH", d.eventReadBatch, 1, 100_000),
    handshakeTimeoutMs: intFromEnv(env, "JOBWIRE_HANDSHAKE_TIMEOUT_MS", d.handshakeTimeoutMs, 100, 3_600_000),
    shutdownGraceMs: intFromEnv(env, "JOBWIRE_SHUTDOWN_GRACE_MS", d.shutdownGraceMs, 0, 3_600_000),
    cancelGraceMs: intFromEnv(env, "JOBWIRE_CANCEL_GRACE_MS", d.cancelGraceMs, 0, 86_400_000),
    fallbackPollMs: intFromEnv(env, "JOBWIRE_FALLBACK_POLL_MS", d.fallbackPollMs, 10, 3_600_000),
    eventRecheckMs: intFromEnv(env, "JOBWIRE_EVENT_RECHECK_MS", d.eventRecheckMs, 10, 3_600_000),
    keepAliveMs: intFromEnv(env, "JOBWIRE_KEEPALIVE_MS", d.keepAliveMs, 10, 3_600_000),
    retentionMs: intFromEnv(env, "JOBWIRE_RETENTION_MS", d.retentionMs, 1_000, 3650 * 86_400_000),
    idempotencyWindowMs: intFromEnv(env, "JOBWIRE_IDEMPOTENCY_WINDOW_MS", d.idempotencyWindowMs, 0, 3650 * 86_400_000),
    eventRetentionMs: intFromEnv(env, "JOBWIRE_EVENT_RETENTION_MS", d.eventRetentionMs, 1_000, 3650 * 86_400_000),
    retentionIntervalMs: intFromEnv(env, "JOBWIRE_RETENTION_INTERVAL_MS", d.retentionIntervalMs, 10, 86_400_000),
    webhookAllowCidrs: (env.JOBWIRE_WEBHOOK_ALLOW_CIDRS ?? "").split(",").map((cidr) => cidr.trim()).filter(Boolean),
    webhookTimeoutMs: intFromEnv(env, "JOBWIRE_WEBHOOK_TIMEOUT_MS", d.webhookTimeoutMs, 100, 300_000),
    webhookMaxAttempts: intFromEnv(env, "JOBWIRE_WEBHOOK_MAX_ATTEMPTS", d.webhookMaxAttempts, 1, 100),
    webhookBackoffMs: intFromEnv(env, "JOBWIRE_WEBHOOK_BACKOFF_MS", d.webhookBackoffMs, 1, 3_600_000),
    auth: authConfigFromEnv(env),
    tls: tlsConfigFromEnv(env),
  };
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}
