import type { JobStateName } from "../entities/job-state.js";
import type { Queryable } from "../transaction.js";

/**
 * Pauses a waiting job (scheduled, pending or blocked): it becomes `paused`, remembering
 * the state it was in, and gets its `paused` event. Guarded by state: returns false,
 * changing nothing, for any other state.
 */
export async function jobPauseWaiting(db: Queryable, id: string, reason: string, by: string): Promise<boolean> {
  const result = await db.query(
    `WITH paused AS (
       UPDATE job SET state = 'paused', paused_from = state, updated_at = clock_timestamp()
       WHERE id = $1 AND state IN ('scheduled', 'pending', 'blocked')
       RETURNING id, queue, attempt, paused_from
     )
     INSERT INTO job_event (job_id, queue, type, attempt, data)
     SELECT id, queue, 'paused', attempt, jsonb_build_object('from', paused_from, 'reason', $2::text, 'by', $3::text)
     FROM paused`,
    [id, reason, by],
  );
  return result.rowCount === 1;
}

/** Where a resumed job went. */
export interface ResumedJob {
  queue: string;
  state: JobStateName;
  runAt: Date;
}

/**
 * Resumes a paused job into the state it was paused from, with its `resumed` event; a
 * job paused while scheduled whose run_at has passed becomes `pending` (it would have been
 * promoted meanwhile). A job paused while blocked returns to `blocked`: whatever unblocks
 * blocked jobs sees it again from then on. Guarded by state: undefined, changing nothing,
 * unless the job is paused.
 */
export async function jobResumePaused(db: Queryable, id: string, by: string): Promise<ResumedJob | undefined> {
  const result = await db.query<ResumedJob>(
    `WITH resumed AS (
       UPDATE job SET state = CASE WHEN paused_from = 'scheduled' AND run_at <= clock_timestamp() THEN 'pending'
                                   ELSE paused_from END,
                      paused_from = NULL, updated_at = clock_timestamp()
       WHERE id = $1 AND state = 'paused'
       RETURNING id, queue, attempt, state, run_at
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'resumed', attempt, jsonb_build_object('state', state, 'by', $2::text)
       FROM resumed
     )
     SELECT queue, state, run_at AS "runAt" FROM resumed`,
    [id, by],
  );
  const row = result.rows[0];
  return row && { ...row, runAt: new Date(row.runAt) };
}
