import type { Queryable } from "../transaction.js";

/** How a report about a lease went. */
export type LeaseReportOutcome =
  /** The report changed the job. */
  | { kind: "applied"; workerId: string }
  /** The same report was already applied with this lease: answered OK, nothing changed. */
  | { kind: "repeated" }
  /** The lease is not current (expired, revoked, or another attempt holds the job). */
  | { kind: "lost" }
  /** No such job. */
  | { kind: "not_found" };

/**
 * Completes a running job with its result and writes its `succeeded` event, guarded by the
 * lease (job id, fencing token, running). When the guard fails, tells a repeat of the same
 * completion (the job succeeded with this very lease) from a lost lease.
 */
export async function jobComplete(db: Queryable, jobId: string, leaseToken: string, resultJson: string): Promise<LeaseReportOutcome> {
  const result = await db.query<{ worker: string }>(
    `WITH completed AS (
       UPDATE job SET state = 'succeeded', result = $3::jsonb, finished_at = clock_timestamp(),
                      updated_at = clock_timestamp(), lease_expires_at = NULL, deadline_at = NULL
       WHERE id = $1 AND lease_token = $2 AND state = 'running'
       RETURNING id, queue, attempt, lease_worker
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'succeeded', attempt, '{}'::jsonb FROM completed
     )
     SELECT lease_worker AS worker FROM completed`,
    [jobId, leaseToken, resultJson],
  );
  const applied = result.rows[0];
  if (applied) return { kind: "applied", workerId: applied.worker };
  const current = await db.query<{ state: string; lease_token: string | null }>(
    "SELECT state, lease_token::text FROM job WHERE id = $1",
    [jobId],
  );
  const row = current.rows[0];
  if (!row) return { kind: "not_found" };
  return row.state === "succeeded" && row.lease_token === leaseToken ? { kind: "repeated" } : { kind: "lost" };
}
