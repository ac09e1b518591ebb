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
  /**
   * The idempotency key, recorded on the job; unset or null for none. Which job holds a key
   * is decided before the insert (`jobs/enqueue-keyed.ts`): this only stores it.
   */
  idempotencyKey?: string | null;
}

/**
 * Inserts jobs, their phases, their `enqueued` events and any new queues in one statement,
 * filling unset settings from the queue's defaults and then the server's,
 * so that all of it commits or none does. Rows are passed as parallel arrays and expanded
 * with `unnest`: one round trip whatever the batch size. Jobs whose start is in the future
 * are `scheduled`, the others `pending`. `owners[i]` is the principal owning `jobs[i]`.
 * Returns the inserted jobs (without phases) when `returning` is set, in no particular
 * order; otherwise nothing.
 */
export async function jobInsertMany(db: Queryable, jobs: readonly NewJob[], owners: readonly string[], returning: boolean): Promise<Omit<JobRow, "phases">[]> {
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
       SELECT i.id, i.queue, i.kind, i.priority, i.payload, i.metadata, i.owner, i.run_at, i.delay_ms, i.idempotency_key,
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
                          $20::text[])
         AS i(id, queue, kind, priority, payload, metadata, max_attempts, backoff_initial_ms,
              backoff_max_ms, backoff_multiplier, backoff_jitter, lease_timeout_ms,
              execution_timeout_ms, run_at, delay_ms, owner, idempotency_key)
       -- A queue created by this very statement is not visible here: it has no defaults yet.
       LEFT JOIN queue q ON q.name = i.queue
     ),
     new_queues AS (
       INSERT INTO queue (name) SELECT DISTINCT queue FROM input ON CONFLICT (name) DO NOTHING
     ),
     j AS (
       INSERT INTO job (id, queue, kind, state, priority, payload, metadata, owner, max_attempts,
                        backoff_initial_ms, backoff_max_ms, backoff_multiplier, backoff_jitter,
                        lease_timeout_ms, execution_timeout_ms, run_at, created_at, updated_at, idempotency_key)
       SELECT i.id, i.queue, i.kind,
              (CASE WHEN i.effective_run_at > clock.now THEN 'scheduled' ELSE 'pending' END)::job_state,
              i.priority, i.payload, i.metadata, i.owner, i.max_attempts, i.backoff_initial_ms,
              i.backoff_max_ms, i.backoff_multiplier, i.backoff_jitter, i.lease_timeout_ms,
              i.execution_timeout_ms, i.effective_run_at, clock.now, clock.now, i.idempotency_key
       FROM input i, clock
       RETURNING *
     ),
     phases AS (
       INSERT INTO job_phase (job_id, position, name)
       SELECT * FROM unnest($17::uuid[], $18::smallint[], $19::text[])
     ),
     events AS (
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT j.id, j.queue, 'enqueued', 0,
              jsonb_build_object('state', j.state, 'kind', j.kind, 'run_at', j.run_at, 'by', j.owner)
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
      owners,
      phaseJobIds,
      phasePositions,
      phaseNames,
      // unnest pads a shorter array with NULLs: jobs without keys send an empty one.
      jobs.some((j) => j.idempotencyKey) ? jobs.map((j) => j.idempotencyKey ?? null) : [],
    ],
  });
  return result.rows.map(jobRowFromSql);
}
