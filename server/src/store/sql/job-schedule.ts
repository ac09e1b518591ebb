import type { Queryable } from "../transaction.js";

/**
 * Makes due scheduled jobs pending, in bounded batches, with a `ready` event each; rows
 * other replicas are promoting are skipped. Returns the queues of the promoted jobs, one
 * entry per job, for the caller to wake.
 */
export async function jobPromoteDue(db: Queryable, limit: number): Promise<{ namespace: string; queue: string }[]> {
  const result = await db.query<{ namespace: string; queue: string }>(
    `WITH due AS (
       SELECT id FROM job WHERE state = 'scheduled' AND run_at <= clock_timestamp()
       ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED
     ),
     promoted AS (
       UPDATE job j SET state = 'pending', updated_at = clock_timestamp()
       FROM due WHERE j.id = due.id
       RETURNING j.id, j.namespace, j.queue, j.attempt
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'ready', attempt, '{}'::jsonb FROM promoted
     )
     SELECT namespace, queue FROM promoted`,
    [limit],
  );
  return result.rows;
}

/**
 * Milliseconds from the database's now until the next timed event of the maintenance
 * loops (a scheduled job's run_at, a lease expiry, an execution deadline, a cancel grace
 * end); null when there is none. Negative when one is already due.
 */
export async function jobNextWakeupMs(db: Queryable, cancelGraceMs: number): Promise<{ scheduled: number | null; running: number | null }> {
  const result = await db.query<{ scheduled: number | null; running: number | null }>(
    `SELECT
       (SELECT extract(epoch FROM min(run_at) - clock_timestamp()) * 1000 FROM job WHERE state = 'scheduled') AS scheduled,
       (SELECT extract(epoch FROM least(
          (SELECT min(lease_expires_at) FROM job WHERE state = 'running'),
          (SELECT min(deadline_at) FROM job WHERE state = 'running' AND deadline_at IS NOT NULL),
          (SELECT min(cancel_requested_at) + $1::float8 * interval '1 millisecond'
             FROM job WHERE state = 'running' AND cancel_requested_at IS NOT NULL)
        ) - clock_timestamp()) * 1000) AS running`,
    [cancelGraceMs],
  );
  const row = result.rows[0]!;
  return {
    scheduled: row.scheduled === null ? null : Number(row.scheduled),
    running: row.running === null ? null : Number(row.running),
  };
}
