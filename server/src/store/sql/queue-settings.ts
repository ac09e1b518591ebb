import type { Queryable } from "../transaction.js";
import type { JobSettings } from "./job-insert-many.js";

/** A queue as stored, with its defaults (null: the server's). */
export interface QueueRow extends JobSettings {
  name: string;
  /** How long the queue's finished jobs are kept; null: the server's retention. */
  retentionMs: number | null;
  createdAt: Date;
  updatedAt: Date;
}

const queueColumns = `name, created_at AS "createdAt", updated_at AS "updatedAt",
  max_attempts AS "maxAttempts", backoff_initial_ms::float8 AS "backoffInitialMs",
  backoff_max_ms::float8 AS "backoffMaxMs", backoff_multiplier AS "backoffMultiplier",
  backoff_jitter AS "backoffJitter", lease_timeout_ms AS "leaseTimeoutMs",
  execution_timeout_ms AS "executionTimeoutMs", retention_ms::float8 AS "retentionMs"`;

/** Reads a queue; undefined if it does not exist. */
export async function queueSelect(db: Queryable, name: string): Promise<QueueRow | undefined> {
  const result = await db.query<QueueRow>(`SELECT ${queueColumns} FROM queue WHERE name = $1`, [name]);
  return result.rows[0] && normalise(result.rows[0]);
}

/** Creates the queue if needed and replaces its defaults and retention. */
export async function queueUpsertSettings(db: Queryable, name: string, settings: JobSettings, retentionMs: number | null): Promise<QueueRow> {
  const result = await db.query<QueueRow>(
    `INSERT INTO queue AS q (name, max_attempts, backoff_initial_ms, backoff_max_ms, backoff_multiplier,
                             backoff_jitter, lease_timeout_ms, execution_timeout_ms, retention_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (name) DO UPDATE SET
       max_attempts = EXCLUDED.max_attempts, backoff_initial_ms = EXCLUDED.backoff_initial_ms,
       backoff_max_ms = EXCLUDED.backoff_max_ms, backoff_multiplier = EXCLUDED.backoff_multiplier,
       backoff_jitter = EXCLUDED.backoff_jitter, lease_timeout_ms = EXCLUDED.lease_timeout_ms,
       execution_timeout_ms = EXCLUDED.execution_timeout_ms, retention_ms = EXCLUDED.retention_ms,
       updated_at = clock_timestamp()
     RETURNING ${queueColumns}`,
    [name, settings.maxAttempts, settings.backoffInitialMs, settings.backoffMaxMs, settings.backoffMultiplier,
     settings.backoffJitter, settings.leaseTimeoutMs, settings.executionTimeoutMs, retentionMs],
  );
  return normalise(result.rows[0]!);
}

function normalise(row: QueueRow): QueueRow {
  return { ...row, createdAt: new Date(row.createdAt), updatedAt: new Date(row.updatedAt) };
}
