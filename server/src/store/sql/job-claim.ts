import type { Queryable } from "../transaction.js";
import type { PhaseRow } from "../job-row.js";

/** A job just leased to a worker: what the worker needs to run it. */
export interface ClaimedJob {
  id: string;
  queue: string;
  kind: string;
  payload: unknown;
  metadata: Record<string, string>;
  attempt: number;
  maxAttempts: number;
  leaseToken: string;
  leaseExpiresAt: Date;
  leaseTimeoutMs: number;
  deadlineAt: Date | null;
  progress: unknown;
  lastError: unknown;
  phases: PhaseRow[];
}

/** Which jobs a claim may take, and for whom. */
export interface ClaimRequest {
  workerId: string;
  /** The namespace of the queues. */
  namespace: string;
  queues: readonly string[];
  /** Empty: any kind. */
  kinds: readonly string[];
  limit: number;
}

/**
 * Leases up to `limit` ready jobs of the queues `queues` of `namespace` to a worker in one
 * statement: picks pending jobs in
 * queue priority, then job priority, then run_at, then id order, skipping rows other claimers hold (`SKIP LOCKED`),
 * moves them to `running` with a new fencing token, a lease expiry and an execution
 * deadline, and writes their `leased` events. A job is never leased twice: the row lock
 * and the state guard make concurrent claimers on any replica take disjoint sets. Queues
 * that are paused are skipped (read from the statement's snapshot, without a lock, so a
 * claim that started before a pause committed may still lease).
 */
export async function jobClaimAvailable(db: Queryable, request: ClaimRequest): Promise<ClaimedJob[]> {
  const result = await db.query<ClaimedJob>({
    name: "jobwire_job_claim",
    text: `WITH candidates AS (
       -- One index scan per queue: with "queue = ANY(...)" Postgres cannot walk
       -- job_claim_idx in order and would sort every pending row instead.
       SELECT c.id, c.priority, c.run_at, coalesce(qp.priority, 0) AS queue_priority
       FROM unnest($1::text[]) AS q(name)
       LEFT JOIN queue qp ON qp.namespace = $5 AND qp.name = q.name
       CROSS JOIN LATERAL (
         SELECT id, priority, run_at FROM job
         WHERE state = 'pending' AND admitted AND namespace = $5 AND queue = q.name
           AND (cardinality($2::text[]) = 0 OR kind = ANY($2::text[]))
           -- A paused queue leases nothing. No job column in it: a one-time filter, one
           -- primary-key probe per queue, before the scan and before any row is locked.
           AND NOT EXISTS (SELECT FROM queue p WHERE p.namespace = $5 AND p.name = q.name AND p.paused_at IS NOT NULL)
         ORDER BY priority DESC, run_at, id
         LIMIT $3
         FOR UPDATE SKIP LOCKED
       ) AS c
     ),
     picked AS (
       -- Across queues, a higher queue priority goes first; then the job's own order.
       SELECT id FROM candidates ORDER BY queue_priority DESC, priority DESC, run_at, id LIMIT $3
     ),
     leased AS (
       UPDATE job j SET state = 'running', attempt = j.attempt + 1,
                        lease_token = nextval('job_lease_token_seq'), lease_worker = $4,
                        lease_expires_at = clock_timestamp() + j.lease_timeout_ms * interval '1 millisecond',
                        deadline_at = clock_timestamp() + j.execution_timeout_ms * interval '1 millisecond',
                        started_at = clock_timestamp(), updated_at = clock_timestamp(),
                        cancel_requested_at = NULL, cancel_reason = NULL
       FROM picked WHERE j.id = picked.id
       RETURNING j.*
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'leased', attempt, jsonb_build_object('worker', lease_worker, 'lease_token', lease_token)
       FROM leased
     )
     SELECT l.id, l.queue, l.kind, l.payload, l.metadata, l.attempt, l.max_attempts AS "maxAttempts",
            l.lease_token::text AS "leaseToken", l.lease_expires_at AS "leaseExpiresAt",
            l.lease_timeout_ms AS "leaseTimeoutMs", l.deadline_at AS "deadlineAt",
            l.progress, l.last_error AS "lastError",
            coalesce((
              SELECT json_agg(json_build_object('name', ph.name, 'state', ph.state, 'result', ph.result,
                                                'finishedAt', ph.finished_at) ORDER BY ph.position)
              FROM job_phase ph WHERE ph.job_id = l.id
            ), '[]') AS phases
     FROM leased l
     ORDER BY l.priority DESC, l.run_at, l.id`,
    values: [request.queues, request.kinds, request.limit, request.workerId, request.namespace],
  });
  return result.rows.map((row) => ({
    ...row,
    leaseExpiresAt: new Date(row.leaseExpiresAt),
    deadlineAt: row.deadlineAt === null ? null : new Date(row.deadlineAt),
    phases: row.phases.map((phase) => ({ ...phase, finishedAt: phase.finishedAt === null ? null : new Date(phase.finishedAt) })),
  }));
}
