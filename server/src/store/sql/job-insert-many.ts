import type { StoredWebhookTarget } from "../entities/job.js";
import type { JobRow } from "../job-row.js";
import type { Queryable } from "../transaction.js";
import { jobDefaults } from "../../jobs/defaults.js";
import { jobColumns, jobRowFromSql } from "./job-columns.js";

/**
 * Retry policy and timeouts of a job or of a queue's defaults. Null means unset: a job
 * takes its queue's value, and the queue the server's (`jobs/defaults.ts`).
 */
export interface JobSettings {
  maxAttempts: number | null;
  backoffInitialMs: number | null;
  backoffMaxMs: number | null;
  backoffMultiplier: number | null;
  backoffJitter: number | null;
  leaseTimeoutMs: number | null;
  executionTimeoutMs: number | null;
}

/** A dependency as declared, checked in itself but not yet resolved to a job id. */
export type DeclaredDependency =
  | { ref: string; jobId?: undefined; requiresSuccess: boolean }
  | { ref?: undefined; jobId: string; requiresSuccess: boolean };

/** An edge of the job graph: `childId` waits for `parentId`. */
export interface DependencyEdge {
  childId: string;
  parentId: string;
  requiresSuccess: boolean;
}

/** The graph parts of an insert: the batch the jobs form, and their dependency edges. */
export interface GraphInsert {
  /** The batch of an EnqueueBatch request; its owner is the first job's. */
  batch: { id: string; webhooks: StoredWebhookTarget[] | null } | null;
  edges: readonly DependencyEdge[];
  /** Existing jobs that get dependants: flagged so that the resolver settles them. */
  existingParentIds: readonly string[];
}

const noGraph: GraphInsert = { batch: null, edges: [], existingParentIds: [] };

/** A validated job to insert (see `rpc/validate-job-spec.ts`). */
export interface NewJob extends JobSettings {
  id: string;
  queue: string;
  kind: string;
  priority: number;
  /** The payload, already encoded as JSON text. */
  payloadJson: string;
  /** The metadata object, already encoded as JSON text. */
  metadataJson: string;
  /** An absolute earliest start; null for now or for `delayMs`. */
  runAt: Date | null;
  /** A delay from the database's now; null for now or for `runAt`. */
  delayMs: number | null;
  /** Declared phase names in order. */
  phases: string[];
  /** The job's own webhook targets; null for none. */
  webhooks: StoredWebhookTarget[] | null;
  /** Its name within its EnqueueBatch request; null for none. */
  ref: string | null;
  /** Its dependencies as declared; the edges to insert are resolved from them. */
  dependsOn: DeclaredDependency[];
  /** Dead-end cancellation walks up from this job when it is cancelled. */
  cancelUnneededParents: boolean;
  /** Dead-end cancellation never cancels this job. */
  barrier: boolean;
  /** Its concurrency key; null for none. */
  concurrencyKey: string | null;
  /** Its weight against its concurrency limit. */
  weight: number;
  /**
   * The idempotency key, recorded on the job; unset or null for none. Which job holds a key
   * is decided before the insert (`jobs/enqueue-keyed.ts`): this only stores it.
   */
  idempotencyKey?: string | null;
}

/** Who owns a new job: a principal of a namespace. */
export interface JobOwner {
  namespace: string;
  /** The principal. */
  id: string;
}

/**
 * Inserts jobs, their phases, their `enqueued` events and any new queues in one statement,
 * filling unset settings from the queue's defaults and then the server's,
 * so that all of it commits or none does. Rows are passed as parallel arrays and expanded
 * with `unnest`: one round trip whatever the batch size. Jobs with dependencies are
 * `blocked` (the graph resolver decides when they may run), jobs whose start is in the
 * future `scheduled`, the others `pending`. `owners[i]` is the principal owning `jobs[i]`,
 * and its namespace the job's (and its queue's, batch's and events').
 * `graph` adds the batch row, the dependency edges, and flags the jobs of the graph for the
 * resolver. Returns the inserted jobs (without phases) when `returning` is set, in no
 * particular order; otherwise nothing. Their dependencies are the edges passed in: the
 * statement cannot read back what it inserts itself.
 */
export async function jobInsertMany(
  db: Queryable,
  jobs: readonly NewJob[],
  owners: readonly JobOwner[],
  returning: boolean,
  graph: GraphInsert = noGraph,
): Promise<Omit<JobRow, "phases">[]> {
  const inGraph = new Set<string>([...graph.edges.map((e) => e.childId), ...graph.edges.map((e) => e.parentId)]);
  const phaseJobIds: string[] = [];
  const phasePositions: number[] = [];
  const phaseNames: string[] = [];
  for (const job of jobs) {
    job.phases.forEach((name, position) => {
      phaseJobIds.push(job.id);
      phasePositions.push(position);
      phaseNames.push(name);
    });
  }
  const result = await db.query<Omit<JobRow, "phases">>({
    name: returning ? "jobwire_job_insert_returning" : "jobwire_job_insert",
    text: `WITH clock AS (SELECT clock_timestamp() AS now),
     input AS (
       SELECT i.id, i.namespace, i.queue, i.kind, i.priority, i.payload, i.metadata, i.owner, i.run_at, i.delay_ms, i.webhooks,
         i.ref, i.graph_pending, i.blocked, i.cancel_unneeded_parents, i.barrier, i.weight, i.idempotency_key,
         -- A job without a key takes its queue's; one whose key a limit covers waits for the
         -- admission loop.
         k.concurrency_key,
         (k.concurrency_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM concurrency_limit l
            WHERE l.namespace = i.namespace
              AND (l.key = k.concurrency_key OR (l.is_prefix AND starts_with(k.concurrency_key, l.prefix))))) AS admitted,
         coalesce(i.max_attempts, q.max_attempts, ${jobDefaults.maxAttempts}) AS max_attempts,
         coalesce(i.backoff_initial_ms, q.backoff_initial_ms, ${jobDefaults.backoffInitialMs}) AS backoff_initial_ms,
         greatest(coalesce(i.backoff_max_ms, q.backoff_max_ms, ${jobDefaults.backoffMaxMs}),
                  coalesce(i.backoff_initial_ms, q.backoff_initial_ms, ${jobDefaults.backoffInitialMs})) AS backoff_max_ms,
         coalesce(i.backoff_multiplier, q.backoff_multiplier, ${jobDefaults.backoffMultiplier}) AS backoff_multiplier,
         coalesce(i.backoff_jitter, q.backoff_jitter, ${jobDefaults.backoffJitter}) AS backoff_jitter,
         coalesce(i.lease_timeout_ms, q.lease_timeout_ms, ${jobDefaults.leaseTimeoutMs}) AS lease_timeout_ms,
         coalesce(i.execution_timeout_ms, q.execution_timeout_ms) AS execution_timeout_ms,
         CASE
           WHEN i.delay_ms IS NOT NULL THEN clock.now + i.delay_ms * interval '1 millisecond'
           ELSE greatest(clock.now, coalesce(i.run_at, clock.now))
         END AS effective_run_at
       FROM clock, unnest($1::uuid[], $2::text[], $3::text[], $4::smallint[], $5::jsonb[], $6::jsonb[],
                          $7::integer[], $8::bigint[], $9::bigint[], $10::float8[], $11::float8[],
                          $12::integer[], $13::integer[], $14::timestamptz[], $15::float8[], $16::text[],
                          $20::jsonb[], $23::text[], $24::boolean[], $25::boolean[], $26::boolean[], $27::boolean[],
                          $32::text[], $33::integer[], $34::text[], $35::text[])
         AS i(id, queue, kind, priority, payload, metadata, max_attempts, backoff_initial_ms,
              backoff_max_ms, backoff_multiplier, backoff_jitter, lease_timeout_ms,
              execution_timeout_ms, run_at, delay_ms, owner, webhooks,
              ref, graph_pending, blocked, cancel_unneeded_parents, barrier, concurrency_key, weight, idempotency_key, namespace)
       -- A queue created by this very statement is not visible here: it has no defaults yet.
       LEFT JOIN queue q ON q.namespace = i.namespace AND q.name = i.queue
       CROSS JOIN LATERAL (SELECT coalesce(i.concurrency_key, q.concurrency_key) AS concurrency_key) k
     ),
     new_queues AS (
       INSERT INTO queue (namespace, name) SELECT DISTINCT namespace, queue FROM input ON CONFLICT (namespace, name) DO NOTHING
     ),
     new_batch AS (
       INSERT INTO batch (id, namespace, owner, total, webhooks, created_at)
       SELECT $21::uuid, ($35::text[])[1], ($16::text[])[1], cardinality($1::uuid[]), $22::jsonb, clock.now FROM clock WHERE $21::uuid IS NOT NULL
     ),
     edges AS (
       INSERT INTO job_dependency (child_id, parent_id, requires_success)
       SELECT * FROM unnest($28::uuid[], $29::uuid[], $30::boolean[])
     ),
     flagged_parents AS (
       -- cardinality() first: a one-time filter, so that an insert without existing parents
       -- (nearly all) scans nothing, whatever plan the connection made when job was small.
       UPDATE job SET graph_pending = true WHERE cardinality($31::uuid[]) > 0 AND id = ANY($31::uuid[]) AND NOT graph_pending
     ),
     j AS (
       INSERT INTO job (id, namespace, queue, kind, state, priority, payload, metadata, owner, max_attempts,
                        backoff_initial_ms, backoff_max_ms, backoff_multiplier, backoff_jitter,
                        lease_timeout_ms, execution_timeout_ms, run_at, created_at, updated_at, webhooks,
                        batch_id, ref, graph_pending, cancel_unneeded_parents, barrier, concurrency_key, weight, admitted, idempotency_key)
       SELECT i.id, i.namespace, i.queue, i.kind,
              (CASE WHEN i.blocked THEN 'blocked' WHEN i.effective_run_at > clock.now THEN 'scheduled' ELSE 'pending' END)::job_state,
              i.priority, i.payload, i.metadata, i.owner, i.max_attempts, i.backoff_initial_ms,
              i.backoff_max_ms, i.backoff_multiplier, i.backoff_jitter, i.lease_timeout_ms,
              i.execution_timeout_ms, i.effective_run_at, clock.now, clock.now, i.webhooks,
              $21::uuid, i.ref, i.graph_pending, i.cancel_unneeded_parents, i.barrier, i.concurrency_key, i.weight, i.admitted, i.idempotency_key
       FROM input i, clock
       RETURNING *
     ),
     phases AS (
       INSERT INTO job_phase (job_id, position, name)
       SELECT * FROM unnest($17::uuid[], $18::smallint[], $19::text[])
     ),
     events AS (
       -- Owner and namespace given: the event trigger need not look them up.
       INSERT INTO job_event (job_id, queue, type, attempt, data, owner, namespace)
       SELECT j.id, j.queue, 'enqueued', 0,
              jsonb_build_object('state', j.state, 'kind', j.kind, 'run_at', j.run_at, 'by', j.owner), j.owner, j.namespace
       FROM j
     )
     SELECT ${returning ? jobColumns : "j.id"} FROM j ${returning ? "" : "LIMIT 0"}`,
    values: [
      jobs.map((j) => j.id),
      jobs.map((j) => j.queue),
      jobs.map((j) => j.kind),
      jobs.map((j) => j.priority),
      jobs.map((j) => j.payloadJson),
      jobs.map((j) => j.metadataJson),
      jobs.map((j) => j.maxAttempts),
      jobs.map((j) => j.backoffInitialMs),
      jobs.map((j) => j.backoffMaxMs),
      jobs.map((j) => j.backoffMultiplier),
      jobs.map((j) => j.backoffJitter),
      jobs.map((j) => j.leaseTimeoutMs),
      jobs.map((j) => j.executionTimeoutMs),
      jobs.map((j) => j.runAt),
      jobs.map((j) => j.delayMs),
      owners.map((owner) => owner.id),
      phaseJobIds,
      phasePositions,
      phaseNames,
      jobs.map((j) => (j.webhooks === null ? null : JSON.stringify(j.webhooks))),
      graph.batch?.id ?? null,
      graph.batch?.webhooks ? JSON.stringify(graph.batch.webhooks) : null,
      jobs.map((j) => j.ref),
      jobs.map((j) => inGraph.has(j.id)),
      jobs.map((j) => j.dependsOn.length > 0),
      jobs.map((j) => j.cancelUnneededParents),
      jobs.map((j) => j.barrier),
      graph.edges.map((e) => e.childId),
      graph.edges.map((e) => e.parentId),
      graph.edges.map((e) => e.requiresSuccess),
      graph.existingParentIds,
      jobs.map((j) => j.concurrencyKey),
      jobs.map((j) => j.weight),
      // unnest pads a shorter array with NULLs: jobs without keys send an empty one.
      jobs.some((j) => j.idempotencyKey) ? jobs.map((j) => j.idempotencyKey ?? null) : [],
      owners.map((owner) => owner.namespace),
    ],
  });
  return result.rows.map((row) => ({
    ...jobRowFromSql(row),
    dependencies: graph.edges.filter((edge) => edge.childId === row.id).map(({ parentId, requiresSuccess }) => ({ jobId: parentId, requiresSuccess })),
  }));
}
