import type { Queryable } from "../transaction.js";

/** States in which a job is cancelled at once, without a worker to tell. */
export const waitingStates = ["scheduled", "pending", "blocked", "paused"] as const;

/** One job to cancel, and why. */
export interface CancelItem {
  id: string;
  reason: string;
}

/**
 * Cancels jobs that are not running and not finished, with their pending phases, and
 * writes each one's single `cancelled` event (data: reason, by, and `extra`). Guarded by
 * state (`states`, by default every waiting state): a job running, finished or absent is
 * left alone. Returns the ids and queues of the jobs cancelled.
 */
export async function jobCancelWaiting(
  db: Queryable,
  items: readonly CancelItem[],
  by: string,
  states: readonly string[] = waitingStates,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; queue: string }[]> {
  if (items.length === 0) return [];
  const result = await db.query<{ id: string; queue: string }>(
    `WITH input AS (SELECT * FROM unnest($1::uuid[], $2::text[]) AS i(id, reason)),
     cancelled AS (
       UPDATE job j SET state = 'cancelled', finished_at = clock_timestamp(), updated_at = clock_timestamp(),
                        cancel_requested_at = coalesce(j.cancel_requested_at, clock_timestamp()),
                        cancel_reason = i.reason, paused_from = NULL
       FROM input i
       WHERE j.id = i.id AND j.state = ANY($4::job_state[])
       RETURNING j.id, j.queue, j.attempt, i.reason
     ),
     phases AS (
       UPDATE job_phase SET state = 'cancelled', finished_at = clock_timestamp()
       WHERE job_id IN (SELECT id FROM cancelled) AND state = 'pending'
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'cancelled', attempt, jsonb_build_object('reason', reason, 'by', $3::text) || $5::jsonb
       FROM cancelled
     )
     SELECT id, queue FROM cancelled`,
    [items.map((i) => i.id), items.map((i) => i.reason), by, states, JSON.stringify(extra)],
  );
  return result.rows;
}

/** The lease of a running job that a cancel request was recorded for: its worker must be told. */
export interface RequestedCancel {
  jobId: string;
  workerId: string;
  leaseToken: string;
  reason: string;
}

/**
 * Records a cancel request on running jobs and writes each one's `cancel_requested` event,
 * once: guarded by state and by no earlier request. The worker holding the lease is told
 * by a NOTIFY that the replica holding its stream turns into a cancel message; the job
 * becomes `cancelled` when the worker stops or the grace period ends. Returns the requests
 * recorded.
 */
export async function jobRequestCancel(db: Queryable, items: readonly CancelItem[], by: string): Promise<RequestedCancel[]> {
  if (items.length === 0) return [];
  const result = await db.query<RequestedCancel>(
    `WITH input AS (SELECT * FROM unnest($1::uuid[], $2::text[]) AS i(id, reason)),
     requested AS (
       UPDATE job j SET cancel_requested_at = clock_timestamp(), cancel_reason = i.reason, updated_at = clock_timestamp()
       FROM input i
       WHERE j.id = i.id AND j.state = 'running' AND j.cancel_requested_at IS NULL
       RETURNING j.id, j.queue, j.attempt, j.lease_worker, j.lease_token, i.reason
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'cancel_requested', attempt, jsonb_build_object('reason', reason, 'by', $3::text)
       FROM requested
     )
     SELECT id AS "jobId", lease_worker AS "workerId", lease_token::text AS "leaseToken", reason FROM requested`,
    [items.map((i) => i.id), items.map((i) => i.reason), by],
  );
  return result.rows;
}
