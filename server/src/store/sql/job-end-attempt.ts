import type { JobStateName } from "../entities/job-state.js";
import type { Queryable } from "../transaction.js";

/** Why an attempt ended without success; recorded on the job's last_error and events. */
export type AttemptEndCause =
  /** The worker reported a failure (FailJob). */
  | "failed"
  /** No heartbeat within the lease timeout. */
  | "lease_expired"
  /** The execution deadline passed. */
  | "timeout"
  /** The worker's stream closed while it held the lease. */
  | "released"
  /** A cancel was requested and the worker did not stop within the grace period. */
  | "cancel_revoked";

/** Which running jobs' attempts to end. */
export type AttemptSelector =
  | { by: "lease"; jobId: string; leaseToken: string }
  | { by: "worker"; workerId: string }
  | { by: "expired" }
  | { by: "deadline" }
  | { by: "cancel_grace"; graceMs: number };

/** The failure to record. */
export interface AttemptFailure {
  cause: AttemptEndCause;
  message: string;
  details?: unknown;
  phase?: string;
  /** false: go straight to `failed`. */
  retryable: boolean;
  /** Overrides the backoff before the next attempt. */
  retryAfterMs?: number;
  /** true: the next attempt may start at once (no backoff), e.g. after a worker vanished. */
  immediate?: boolean;
}

/** A job whose attempt was ended. */
export interface EndedAttempt {
  id: string;
  namespace: string;
  queue: string;
  state: JobStateName;
  attempt: number;
  workerId: string;
  leaseToken: string;
  /** When the next attempt may start (for `scheduled` and `pending`). */
  runAt: Date;
}

/** Batch size of the set-based paths (expiry, deadline, grace, release). */
const endBatchSize = 500;

const selectors: Record<AttemptSelector["by"], string> = {
  lease: "id = $8::uuid AND lease_token = $9::bigint AND state = 'running'",
  worker: "lease_worker = $8::text AND state = 'running'",
  expired: "state = 'running' AND lease_expires_at <= clock_timestamp()",
  deadline: "state = 'running' AND deadline_at <= clock_timestamp()",
  cancel_grace: "state = 'running' AND cancel_requested_at <= clock_timestamp() - $8::float8 * interval '1 millisecond'",
};

/**
 * Ends running attempts that did not succeed, in one statement, with their events: a job
 * with a cancel request becomes `cancelled` (its pending phases too); one with attempts
 * left and a retryable failure becomes `scheduled` after its backoff (exponential, capped,
 * with jitter; or the retry-after given; or `pending` at once when `immediate`); any other
 * becomes `failed`. Guarded by state (and by lease for reports), rows locked by others are
 * skipped, so replicas reaping at once never end an attempt twice.
 */
export async function jobEndAttempts(db: Queryable, selector: AttemptSelector, failure: AttemptFailure): Promise<EndedAttempt[]> {
  const selectorParams: unknown[] =
    selector.by === "lease" ? [selector.jobId, selector.leaseToken]
    : selector.by === "worker" ? [selector.workerId]
    : selector.by === "cancel_grace" ? [selector.graceMs]
    : [];
  const result = await db.query<EndedAttempt>({
    name: `jobwire_job_end_attempts_${selector.by}`,
    text: `WITH target AS (
       SELECT j.id, j.lease_worker, j.lease_token,
              CASE
                WHEN j.cancel_requested_at IS NOT NULL OR $1 = 'cancel_revoked' THEN 'cancelled'
                WHEN NOT $2 OR j.attempt >= j.max_attempts THEN 'failed'
                -- Immediate, or a retry-after of zero: ready again at once, no promotion hop.
                WHEN $6 OR $5::float8 = 0 THEN 'pending'
                ELSE 'scheduled'
              END::job_state AS next_state,
              backoff.delay_ms,
              clock_timestamp() + backoff.delay_ms * interval '1 millisecond' AS retry_at
       FROM job j
       CROSS JOIN LATERAL (
         SELECT coalesce($5::float8,
                  least(j.backoff_max_ms, j.backoff_initial_ms * power(j.backoff_multiplier, j.attempt - 1))
                  * (1 - j.backoff_jitter * random())) AS delay_ms
       ) backoff
       WHERE ${selectors[selector.by]}
       ORDER BY j.id
       LIMIT ${endBatchSize}
       -- A report waits for a concurrent CancelJob on its row; reapers skip rows others hold.
       FOR UPDATE OF j ${selector.by === "lease" ? "" : "SKIP LOCKED"}
     ),
     ended AS (
       UPDATE job j SET
         state = t.next_state,
         run_at = CASE WHEN t.next_state = 'scheduled' THEN t.retry_at
                       WHEN t.next_state = 'pending' THEN clock_timestamp() ELSE j.run_at END,
         finished_at = CASE WHEN t.next_state IN ('cancelled', 'failed') THEN clock_timestamp() END,
         lease_expires_at = NULL, deadline_at = NULL, updated_at = clock_timestamp(),
         last_error = jsonb_build_object('message', $3::text, 'details', $4::jsonb, 'attempt', j.attempt,
                                         'phase', $7::text, 'at', clock_timestamp(),
                                         'retryable', t.next_state IN ('scheduled', 'pending'),
                                         'cause', $1::text, 'lease_token', j.lease_token::text)
       FROM target t WHERE j.id = t.id
       RETURNING j.id, j.namespace, j.queue, j.state, j.attempt, j.run_at, j.cancel_reason, t.lease_worker, t.lease_token, t.delay_ms
     ),
     phases AS (
       UPDATE job_phase SET state = 'cancelled', finished_at = clock_timestamp()
       WHERE job_id IN (SELECT id FROM ended WHERE state = 'cancelled') AND state = 'pending'
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT e.id, e.queue, ev.type, e.attempt, ev.data
       FROM ended e
       CROSS JOIN LATERAL (VALUES
         (1, CASE WHEN $1 IN ('lease_expired', 'timeout', 'released') THEN $1 END,
             jsonb_build_object('worker', e.lease_worker, 'message', $3::text)),
         (2, CASE e.state WHEN 'cancelled' THEN 'cancelled' WHEN 'failed' THEN 'failed'
                          WHEN 'scheduled' THEN 'retry_scheduled' WHEN 'pending' THEN 'retry_scheduled' END,
             jsonb_build_object('message', $3::text, 'cause', $1::text, 'run_at', e.run_at, 'reason', e.cancel_reason)
               || CASE WHEN e.state = 'scheduled' THEN jsonb_build_object('delay_ms', round(e.delay_ms)) ELSE '{}' END)
       ) AS ev(position, type, data)
       WHERE ev.type IS NOT NULL
       ORDER BY e.id, ev.position
     )
     SELECT e.id, e.namespace, e.queue, e.state, e.attempt, e.lease_worker AS "workerId", e.lease_token::text AS "leaseToken",
            e.run_at AS "runAt"
     FROM ended e`,
    values: [
      failure.cause,
      failure.retryable,
      failure.message,
      failure.details === undefined ? null : JSON.stringify(failure.details),
      failure.retryAfterMs ?? null,
      failure.immediate ?? false,
      failure.phase ?? null,
      // Only the selector's own parameters ($8, $9): Postgres must see every one used.
      ...selectorParams,
    ],
  });
  return result.rows.map((row) => ({ ...row, runAt: new Date(row.runAt) }));
}

/** Whether a set-based end may have left more rows to end (it took a full batch). */
export function mayHaveMore(ended: readonly EndedAttempt[]): boolean {
  return ended.length >= endBatchSize;
}
