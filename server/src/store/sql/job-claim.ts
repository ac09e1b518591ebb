import type { Queryable } from "../transaction.js";
import { jsonById } from "./json-by-id.js";
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
  /** Its concurrency key, if it has one (the admission loop shares a pass's slots by key). */
  concurrencyKey: string | null;
}

/**
 * What a lease sets on job row `j`, for the worker in SQL expression `worker`: a new
 * fencing token, the lease expiry and the execution deadline from now.
 */
export function leaseAssignments(worker: string): string {
  return `state = 'running', attempt = j.attempt + 1,
          lease_token = nextval('job_lease_token_seq'), lease_worker = ${worker},
          lease_expires_at = clock_timestamp() + j.lease_timeout_ms * interval '1 millisecond',
          deadline_at = clock_timestamp() + j.execution_timeout_ms * interval '1 millisecond',
          started_at = clock_timestamp(), updated_at = clock_timestamp(),
          cancel_requested_at = NULL, cancel_reason = NULL`;
}

/**
 * The tail of a leasing statement whose CTE `leased` returned the leased rows: writes their
 * `leased` events and selects them as {@link ClaimedJob} columns, in claim order.
 */
export const leasedEventsAndJobs = `events AS (
       -- Owner and namespace given: the event trigger need not look them up, row by row.
       INSERT INTO job_event (job_id, queue, type, attempt, data, owner, namespace)
       SELECT id, queue, 'leased', attempt, jsonb_build_object('worker', lease_worker, 'lease_token', lease_token), owner, namespace
       FROM leased
     )
     SELECT l.id, l.queue, l.kind, l.payload, l.metadata, l.attempt, l.max_attempts AS "maxAttempts",
            l.lease_token::text AS "leaseToken", l.lease_expires_at AS "leaseExpiresAt",
            l.lease_timeout_ms AS "leaseTimeoutMs", l.deadline_at AS "deadlineAt",
            l.progress, l.last_error AS "lastError", l.concurrency_key AS "concurrencyKey",
            coalesce((
              SELECT json_agg(json_build_object('name', ph.name, 'state', ph.state, 'result', ph.result,
                                                'finishedAt', ph.finished_at) ORDER BY ph.position)
              FROM job_phase ph WHERE ph.job_id = l.id
            ), '[]') AS phases
     FROM leased l
     ORDER BY l.priority DESC, l.run_at, l.id`;

/** A row of a leasing statement's tail ({@link leasedEventsAndJobs}) as a {@link ClaimedJob}. */
export function claimedJob(row: ClaimedJob): ClaimedJob {
  return {
    ...row,
    leaseExpiresAt: new Date(row.leaseExpiresAt),
    deadlineAt: row.deadlineAt === null ? null : new Date(row.deadlineAt),
    phases: row.phases.map((phase) => ({ ...phase, finishedAt: phase.finishedAt === null ? null : new Date(phase.finishedAt) })),
  };
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
 * The jobs a claim may take from queue `q.name`, as a condition on `job`: pending and
 * admitted, of the namespace in parameter `namespace` and of the kinds in parameter
 * `kinds` (empty: any kind), in a queue that is not paused.
 */
function claimableIn(namespace: string, kinds: string): string {
  return `state = 'pending' AND admitted AND namespace = ${namespace} AND queue = q.name
           AND (cardinality(${kinds}::text[]) = 0 OR kind = ANY(${kinds}::text[]))
           -- A paused queue leases nothing. No job column in it: a one-time filter, one
           -- primary-key probe per queue, before the scan and before any row is locked.
           AND NOT EXISTS (SELECT FROM queue p WHERE p.namespace = ${namespace} AND p.name = q.name AND p.paused_at IS NOT NULL)`;
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
         WHERE ${claimableIn("$5", "$2")}
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
       -- The picked ids as an index condition rather than a join: a generic plan (see
       -- orm.ts) cannot tell how many rows "LIMIT $3" keeps, and hashed them against a
       -- scan of the whole table, 0.5 s a claim on a 1,000,000-job backlog.
       UPDATE job j SET ${leaseAssignments("$4")}
       WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
       RETURNING j.*
     ),
     ${leasedEventsAndJobs}`,
    values: [request.queues, request.kinds, request.limit, request.workerId, request.namespace],
  });
  return result.rows.map(claimedJob);
}

/**
 * Whether any job a claim of `request` could take is pending now, locked or not: after a
 * claim that came back short, true means it skipped rows another transaction held (or
 * that were committed after it started), so its stream should claim again rather than
 * wait for a wake-up. Paused queues are not looked at.
 */
export async function jobReadyExists(db: Queryable, request: Omit<ClaimRequest, "workerId" | "limit">): Promise<boolean> {
  const result = await db.query<{ exists: boolean }>({
    name: "jobwire_job_ready_exists",
    text: `SELECT EXISTS (
             SELECT FROM unnest($1::text[]) AS q(name)
             CROSS JOIN LATERAL (
               -- In the claim's order, so that the plan walks job_claim_idx: without it, a
               -- generic plan scanned the whole table (0.5 s with 1,350,000 finished jobs).
               SELECT 1 FROM job WHERE ${claimableIn("$3", "$2")} ORDER BY priority DESC, run_at, id LIMIT 1
             ) AS ready
           ) AS exists`,
    values: [request.queues, request.kinds, request.namespace],
  });
  return result.rows[0]?.exists ?? true;
}

/** A job the admission loop admits straight into a lease of a local worker. */
export interface AdmissionLease {
  jobId: string;
  workerId: string;
  /** Whether the limit it is admitted under has a rate (so that the rate window counts it). */
  underRate: boolean;
}

/**
 * Admits waiting jobs and leases them in one write each (see `AdmissionLoop`): each job
 * of `leases` that is still pending and not admitted becomes admitted and `running` under
 * a new lease of its worker, with its `leased` event, as a claim would lease it. Runs in
 * the admission pass's transaction, under the locks of the jobs' limits. A job cancelled or
 * paused since it was picked is left out.
 */
export async function jobLeaseOnAdmission(tx: Queryable, leases: readonly AdmissionLease[]): Promise<ClaimedJob[]> {
  if (leases.length === 0) return [];
  const ids = leases.map((lease) => lease.jobId);
  const result = await tx.query<ClaimedJob>({
    name: "jobwire_job_lease_on_admission",
    text: `WITH leased AS (
       -- Each job's [worker, under rate] looked up by its id (see jsonById).
       UPDATE job j SET ${leaseAssignments("($2::jsonb -> j.id::text) ->> 0")},
                        admitted = true, admitted_at = clock_timestamp(), admitted_under_rate = (($2::jsonb -> j.id::text) ->> 1)::boolean
       -- The guard written so that it does not match job_admission_idx's predicate: with
       -- "state = 'pending' AND NOT admitted", a generic plan scanned that whole index
       -- (every waiting job) on every pass, for ids it does not lead with (decision 0006).
       WHERE j.id = ANY($1::uuid[]) AND j.state::text = 'pending' AND j.admitted IS NOT TRUE
       RETURNING j.*
     ),
     ${leasedEventsAndJobs}`,
    values: [ids, jsonById(ids, leases.map((lease) => JSON.stringify([lease.workerId, lease.underRate])))],
  });
  return result.rows.map(claimedJob);
}
