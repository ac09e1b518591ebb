import type { Queryable } from "../transaction.js";
import { jsonById, roundsOfDistinctIds } from "./json-by-id.js";

/** A lease named by a worker: job id and fencing token (int64 as decimal text). */
export interface LeaseKey {
  jobId: string;
  leaseToken: string;
}

/** A lease a heartbeat extended. */
export interface ExtendedLeaseRow extends LeaseKey {
  leaseExpiresAt: Date;
  cancelRequested: boolean;
}

/**
 * Extends current leases by their job's lease timeout, in one statement (one per round if
 * a job is named twice, say with an old lease and the current one). Leases that are not
 * current are simply not returned. A heartbeat is not a change of state: no event.
 */
export async function jobLeaseExtendMany(db: Queryable, leases: readonly LeaseKey[]): Promise<ExtendedLeaseRow[]> {
  const extended: ExtendedLeaseRow[] = [];
  for (const round of roundsOfDistinctIds(leases, (l) => l.jobId)) {
    const ids = round.map((l) => l.jobId);
    const result = await db.query<ExtendedLeaseRow>({
      name: "jobwire_job_lease_extend",
      text: `UPDATE job j SET lease_expires_at = clock_timestamp() + j.lease_timeout_ms * interval '1 millisecond'
       -- By primary key whatever the plan, each job's token looked up by its id (see jsonById).
       WHERE j.id = ANY($1::uuid[]) AND j.lease_token = ($2::jsonb ->> j.id::text)::bigint AND j.state::text = 'running'
       RETURNING j.id AS "jobId", j.lease_token::text AS "leaseToken", j.lease_expires_at AS "leaseExpiresAt",
                 j.cancel_requested_at IS NOT NULL AS "cancelRequested"`,
      values: [ids, jsonById(ids, round.map((l) => JSON.stringify(l.leaseToken)))],
    });
    for (const row of result.rows) extended.push({ ...row, leaseExpiresAt: new Date(row.leaseExpiresAt) });
  }
  return extended;
}

/**
 * Moves the current leases among `leases` to another worker stream (a worker that
 * reconnected), returning those adopted; the others are no longer current.
 */
export async function jobLeaseAdoptMany(db: Queryable, workerId: string, leases: readonly LeaseKey[]): Promise<LeaseKey[]> {
  if (leases.length === 0) return [];
  const result = await db.query<LeaseKey>(
    `UPDATE job j SET lease_worker = $3, updated_at = clock_timestamp()
     FROM unnest($1::uuid[], $2::bigint[]) AS l(id, token)
     WHERE j.id = l.id AND j.lease_token = l.token AND j.state = 'running'
     RETURNING j.id AS "jobId", j.lease_token::text AS "leaseToken"`,
    [leases.map((l) => l.jobId), leases.map((l) => l.leaseToken), workerId],
  );
  return result.rows;
}

/**
 * Stores a running job's progress and writes a `progress` event, guarded by the lease.
 * Returns false when the lease is not current.
 */
export async function jobProgressSet(db: Queryable, lease: LeaseKey, progressJson: string): Promise<boolean> {
  const result = await db.query(
    `WITH updated AS (
       UPDATE job SET progress = $3::jsonb, updated_at = clock_timestamp()
       WHERE id = $1 AND lease_token = $2 AND state = 'running'
       RETURNING id, queue, attempt
     )
     INSERT INTO job_event (job_id, queue, type, attempt, data)
     SELECT id, queue, 'progress', attempt, jsonb_build_object('progress', $3::jsonb) FROM updated`,
    [lease.jobId, lease.leaseToken, progressJson],
  );
  return result.rowCount === 1;
}

/** How a CompletePhase went. */
export type PhaseCompleteOutcome = "applied" | "repeated" | "lost" | "unknown_phase";

/**
 * Checkpoints a declared phase's result and writes a `phase_completed` event, guarded by
 * the job's lease (the job row is locked for the change, so a concurrent cancel or report
 * waits). Completing an already completed phase again is `repeated`, and changes nothing.
 */
export async function jobPhaseComplete(db: Queryable, lease: LeaseKey, phase: string, resultJson: string): Promise<PhaseCompleteOutcome> {
  const result = await db.query<{ outcome: PhaseCompleteOutcome }>(
    `WITH leased AS (
       SELECT id, queue, attempt FROM job
       WHERE id = $1 AND lease_token = $2 AND state = 'running'
       FOR NO KEY UPDATE
     ),
     phase AS (
       SELECT ph.state FROM job_phase ph JOIN leased ON ph.job_id = leased.id WHERE ph.name = $3
     ),
     completed AS (
       UPDATE job_phase ph SET state = 'succeeded', result = $4::jsonb, finished_at = clock_timestamp()
       FROM leased WHERE ph.job_id = leased.id AND ph.name = $3 AND ph.state = 'pending'
       RETURNING ph.job_id
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT leased.id, leased.queue, 'phase_completed', leased.attempt, jsonb_build_object('phase', $3::text)
       FROM leased JOIN completed ON completed.job_id = leased.id
     )
     SELECT CASE
       WHEN NOT EXISTS (SELECT 1 FROM leased) THEN 'lost'
       WHEN EXISTS (SELECT 1 FROM completed) THEN 'applied'
       WHEN NOT EXISTS (SELECT 1 FROM phase) THEN 'unknown_phase'
       ELSE 'repeated'
     END AS outcome`,
    [lease.jobId, lease.leaseToken, phase, resultJson],
  );
  return result.rows[0]!.outcome;
}
