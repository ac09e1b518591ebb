import type { Queryable } from "../transaction.js";

/**
 * Makes a failed or cancelled job pending again and writes its `retried` event. With
 * `fromStart`, every phase is reset and its stored result dropped; otherwise completed
 * phases keep their results and only the unfinished ones become pending again. A job whose
 * attempts are used up gets one more. Guarded by state: returns false, changing nothing,
 * for any other state.
 */
export async function jobRetryFinished(db: Queryable, id: string, fromStart: boolean, by: string): Promise<boolean> {
  const result = await db.query(
    `WITH retried AS (
       UPDATE job SET state = 'pending', run_at = clock_timestamp(), updated_at = clock_timestamp(),
                      finished_at = NULL, cancel_requested_at = NULL, cancel_reason = NULL,
                      max_attempts = greatest(max_attempts, attempt + 1)
       WHERE id = $1 AND state IN ('failed', 'cancelled')
       RETURNING id, queue, attempt
     ),
     phases AS (
       UPDATE job_phase SET state = 'pending', result = NULL, finished_at = NULL
       WHERE job_id IN (SELECT id FROM retried) AND ($2 OR state <> 'succeeded')
     )
     INSERT INTO job_event (job_id, queue, type, attempt, data)
     SELECT id, queue, 'retried', attempt, jsonb_build_object('from_start', $2::boolean, 'by', $3::text)
     FROM retried`,
    [id, fromStart, by],
  );
  return result.rowCount === 1;
}
