import type { Queryable } from "../transaction.js";

/**
 * Cancels a job that is not running and not finished, with its pending phases, and writes
 * its one `cancelled` event. Guarded by state: returns false, changing nothing, when the
 * job is running, finished or absent.
 */
export async function jobCancelWaiting(db: Queryable, id: string, reason: string, by: string): Promise<boolean> {
  const result = await db.query(
    `WITH cancelled AS (
       UPDATE job SET state = 'cancelled', finished_at = clock_timestamp(), updated_at = clock_timestamp(),
                      cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp()),
                      cancel_reason = $2, paused_from = NULL
       WHERE id = $1 AND state IN ('scheduled', 'pending', 'blocked', 'paused')
       RETURNING id, queue, attempt, state
     ),
     phases AS (
       UPDATE job_phase SET state = 'cancelled', finished_at = clock_timestamp()
       WHERE job_id IN (SELECT id FROM cancelled) AND state = 'pending'
     )
     INSERT INTO job_event (job_id, queue, type, attempt, data)
     SELECT id, queue, 'cancelled', attempt, jsonb_build_object('reason', $2::text, 'by', $3::text)
     FROM cancelled`,
    [id, reason, by],
  );
  return result.rowCount === 1;
}

/**
 * Records a cancel request on a running job and writes its `cancel_requested` event, once:
 * guarded by state and by no earlier request. The worker holding the lease is told by a
 * NOTIFY that the replica holding its stream turns into a cancel message; the job becomes `cancelled` when the worker stops or the grace period
 * ends. Returns false when nothing changed.
 */
export async function jobRequestCancel(db: Queryable, id: string, reason: string, by: string): Promise<{ workerId: string; leaseToken: string } | undefined> {
  const result = await db.query<{ workerId: string; leaseToken: string }>(
    `WITH requested AS (
       UPDATE job SET cancel_requested_at = clock_timestamp(), cancel_reason = $2, updated_at = clock_timestamp()
       WHERE id = $1 AND state = 'running' AND cancel_requested_at IS NULL
       RETURNING id, queue, attempt, lease_worker, lease_token
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'cancel_requested', attempt, jsonb_build_object('reason', $2::text, 'by', $3::text)
       FROM requested
     )
     SELECT lease_worker AS "workerId", lease_token::text AS "leaseToken" FROM requested`,
    [id, reason, by],
  );
  return result.rows[0];
}
