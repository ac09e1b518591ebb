import type { Queryable } from "../transaction.js";
import { claimedJob, leaseAssignments, leasedEventsAndJobs, type ClaimedJob } from "./job-claim.js";

/** A one-key limit without a rate, locked by the caller's transaction: what it bounds. */
export interface KeyBound {
  key: string;
  maxRunning: number | null;
  maxWeight: number | null;
}

/** What {@link jobLeaseAdmissible} may lease, and to whom. */
export interface AdmissibleLeaseRequest {
  namespace: string;
  workerId: string;
  /** The worker's queues and kinds (empty: any kind). */
  queues: readonly string[];
  kinds: readonly string[];
  /** The most jobs to lease: the worker's slots held for the pass. */
  budget: number;
  bounds: readonly KeyBound[];
}

/**
 * Admits and leases, in one statement, the waiting jobs that one-key limits without a rate
 * may admit now and a worker takes: counts what each key has in use, takes its first
 * waiting jobs (priority, run_at, id) while its running and weight bounds hold, at most an
 * even share of the budget per key (shared by the keys whose limits have room), and across
 * keys the first `budget` in lease order. Runs under the limits' locks, in a statement after
 * the one that took them, so that its counts see every admission committed before. Jobs of
 * a paused queue wait. Each leased job comes back with its key.
 *
 * Only an even share is read. A key's waiting jobs are found through job_admission_idx,
 * whose first entries, under load, are those of jobs leased moments ago (dead versions a
 * scan steps over, each a heap visit): reading twice a share, or probing each key once more
 * for waiting jobs, cost the keyed drain a tenth to a fifth of its rate. A share that keys
 * with fewer jobs leave unused goes to the others in a second call (the caller's).
 */
export async function jobLeaseAdmissible(db: Queryable, request: AdmissibleLeaseRequest): Promise<ClaimedJob[]> {
  const result = await db.query<ClaimedJob>({
    name: "jobwire_job_lease_admissible",
    text: `WITH open_queues AS (
             SELECT array_agg(q.name) AS names FROM unnest($5::text[]) AS q(name)
             WHERE NOT EXISTS (SELECT FROM queue p WHERE p.namespace = $4 AND p.name = q.name AND p.paused_at IS NOT NULL)
           ),
           counted AS (
             SELECT u.key, in_use.weight, coalesce(u.max_weight - in_use.weight, 2147483647) AS weight_left,
                    least(coalesce(u.max_running - in_use.running, $7), $7) AS slots
             FROM unnest($1::text[], $2::int[], $3::int[]) AS u(key, max_running, max_weight)
             CROSS JOIN LATERAL (
               SELECT count(*)::int AS running, coalesce(sum(j.weight), 0)::int AS weight FROM job j
               WHERE j.concurrency_key IS NOT NULL AND (j.state = 'running' OR (j.state = 'pending' AND j.admitted))
                 AND j.namespace = $4 AND j.concurrency_key = u.key
             ) in_use
           ),
           usage AS (
             SELECT c.*, ceil($7::numeric / greatest(count(*) FILTER (WHERE c.slots > 0) OVER (), 1))::int AS share FROM counted c
           ),
           candidates AS (
             SELECT w.id, row_number() OVER (ORDER BY coalesce(q.priority, 0) DESC, w.priority DESC, w.run_at, w.id) AS rank
             FROM usage
             CROSS JOIN LATERAL (
               SELECT f.id, f.queue, f.priority, f.run_at, sum(f.weight) OVER (ORDER BY f.priority DESC, f.run_at, f.id) AS weight_through
               FROM (
                 SELECT j.id, j.queue, j.weight, j.priority, j.run_at FROM job j
                 WHERE j.state = 'pending' AND NOT j.admitted AND j.namespace = $4 AND j.concurrency_key = usage.key
                   AND j.queue = ANY((SELECT names FROM open_queues)::text[])
                   AND (cardinality($6::text[]) = 0 OR j.kind = ANY($6::text[]))
                 ORDER BY j.priority DESC, j.run_at, j.id LIMIT greatest(least(usage.slots, usage.share), 0)
               ) f
             ) w
             LEFT JOIN queue q ON q.namespace = $4 AND q.name = w.queue
             WHERE w.weight_through <= usage.weight_left
           ),
           leased AS (
             UPDATE job j SET ${leaseAssignments("$8")},
                              admitted = true, admitted_at = clock_timestamp(), admitted_under_rate = false
             -- See jobLeaseOnAdmission for why the guard does not read "NOT admitted".
             WHERE j.id = ANY(ARRAY(SELECT id FROM candidates WHERE rank <= $7)) AND j.state::text = 'pending' AND j.admitted IS NOT TRUE
             RETURNING j.*
           ),
           ${leasedEventsAndJobs}`,
    values: [
      request.bounds.map((bound) => bound.key),
      request.bounds.map((bound) => bound.maxRunning),
      request.bounds.map((bound) => bound.maxWeight),
      request.namespace,
      request.queues,
      request.kinds,
      request.budget,
      request.workerId,
    ],
  });
  return result.rows.map(claimedJob);
}
