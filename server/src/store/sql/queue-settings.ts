import type { Queryable } from "../transaction.js";
import type { JobSettings } from "./job-insert-many.js";

/** A queue as stored, with its defaults (null: the server's). */
export interface QueueRow extends JobSettings, QueueOwnSettings {
  name: string;
  createdAt: Date;
  updatedAt: Date;
  /** When the queue was paused; null unless paused. */
  pausedAt: Date | null;
}

/** Settings of a queue that are not job defaults. Null: the server's. */
export interface QueueOwnSettings {
  /** How long the queue's finished jobs are kept. */
  retentionMs: number | null;
  /** How long a finished job keeps its idempotency key. */
  idempotencyWindowMs: number | null;
  /** The concurrency key of the queue's jobs that carry none. */
  concurrencyKey: string | null;
  /** The queue's priority among a worker's queues. */
  priority: number;
}

const queueColumns = `name, created_at AS "createdAt", updated_at AS "updatedAt",
  max_attempts AS "maxAttempts", backoff_initial_ms::float8 AS "backoffInitialMs",
  backoff_max_ms::float8 AS "backoffMaxMs", backoff_multiplier AS "backoffMultiplier",
  backoff_jitter AS "backoffJitter", lease_timeout_ms AS "leaseTimeoutMs",
  execution_timeout_ms AS "executionTimeoutMs", retention_ms::float8 AS "retentionMs",
  idempotency_window_ms::float8 AS "idempotencyWindowMs", paused_at AS "pausedAt",
  concurrency_key AS "concurrencyKey", priority`;

/** Reads queue `name` of `namespace`; undefined if it does not exist. */
export async function queueSelect(db: Queryable, namespace: string, name: string): Promise<QueueRow | undefined> {
  const result = await db.query<QueueRow>(`SELECT ${queueColumns} FROM queue WHERE namespace = $2 AND name = $1`, [name, namespace]);
  return result.rows[0] && normalise(result.rows[0]);
}

/** Creates the queue if needed and replaces its defaults and own settings (not its pause). */
export async function queueUpsertSettings(
  db: Queryable,
  namespace: string,
  name: string,
  settings: JobSettings,
  own: QueueOwnSettings,
): Promise<QueueRow> {
  const result = await db.query<QueueRow>(
    `INSERT INTO queue AS q (name, max_attempts, backoff_initial_ms, backoff_max_ms, backoff_multiplier,
                             backoff_jitter, lease_timeout_ms, execution_timeout_ms, retention_ms,
                             idempotency_window_ms, concurrency_key, priority, namespace)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (namespace, name) DO UPDATE SET
       max_attempts = EXCLUDED.max_attempts, backoff_initial_ms = EXCLUDED.backoff_initial_ms,
       backoff_max_ms = EXCLUDED.backoff_max_ms, backoff_multiplier = EXCLUDED.backoff_multiplier,
       backoff_jitter = EXCLUDED.backoff_jitter, lease_timeout_ms = EXCLUDED.lease_timeout_ms,
       execution_timeout_ms = EXCLUDED.execution_timeout_ms, retention_ms = EXCLUDED.retention_ms,
       idempotency_window_ms = EXCLUDED.idempotency_window_ms, concurrency_key = EXCLUDED.concurrency_key,
       priority = EXCLUDED.priority, updated_at = clock_timestamp()
     RETURNING ${queueColumns}`,
    [name, settings.maxAttempts, settings.backoffInitialMs, settings.backoffMaxMs, settings.backoffMultiplier,
     settings.backoffJitter, settings.leaseTimeoutMs, settings.executionTimeoutMs, own.retentionMs,
     own.idempotencyWindowMs, own.concurrencyKey, own.priority, namespace],
  );
  return normalise(result.rows[0]!);
}

/**
 * Pauses a queue, creating it if needed: the claim statement leases none of its jobs from
 * the commit on. A paused queue keeps its first `paused_at`.
 */
export async function queuePause(db: Queryable, namespace: string, name: string): Promise<QueueRow> {
  const result = await db.query<QueueRow>(
    `INSERT INTO queue AS q (namespace, name, paused_at) VALUES ($2, $1, clock_timestamp())
     ON CONFLICT (namespace, name) DO UPDATE SET paused_at = coalesce(q.paused_at, EXCLUDED.paused_at)
     RETURNING ${queueColumns}`,
    [name, namespace],
  );
  return normalise(result.rows[0]!);
}

/** Resumes a queue; undefined if it does not exist. A queue that is not paused is unchanged. */
export async function queueResume(db: Queryable, namespace: string, name: string): Promise<QueueRow | undefined> {
  const result = await db.query<QueueRow>(
    `UPDATE queue SET paused_at = NULL WHERE namespace = $2 AND name = $1 RETURNING ${queueColumns}`,
    [name, namespace],
  );
  return result.rows[0] && normalise(result.rows[0]);
}

function normalise(row: QueueRow): QueueRow {
  return {
    ...row,
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
    pausedAt: row.pausedAt === null ? null : new Date(row.pausedAt),
  };
}
