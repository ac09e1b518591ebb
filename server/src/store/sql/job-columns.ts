import type { JobRow, PhaseRow } from "../job-row.js";

/**
 * The select list that turns a `job` row (aliased `j`) into a {@link JobRow} but for its
 * phases and dependencies (see {@link jobPhasesColumn}, {@link jobDependenciesColumn}), so
 * that every hand-written statement returns jobs in one shape.
 */
export const jobColumns = `
  j.id, j.namespace, j.queue, j.kind, j.state, j.priority, j.payload, j.metadata, j.owner, j.attempt,
  j.max_attempts AS "maxAttempts",
  j.backoff_initial_ms::float8 AS "backoffInitialMs",
  j.backoff_max_ms::float8 AS "backoffMaxMs",
  j.backoff_multiplier AS "backoffMultiplier",
  j.backoff_jitter AS "backoffJitter",
  j.lease_timeout_ms AS "leaseTimeoutMs",
  j.execution_timeout_ms AS "executionTimeoutMs",
  j.run_at AS "runAt", j.created_at AS "createdAt", j.updated_at AS "updatedAt",
  j.started_at AS "startedAt", j.finished_at AS "finishedAt",
  j.cancel_requested_at AS "cancelRequestedAt", j.cancel_reason AS "cancelReason",
  j.progress, j.result, j.last_error AS "lastError", j.webhooks,
  j.batch_id AS "batchId", j.ref, j.cancel_unneeded_parents AS "cancelUnneededParents", j.barrier,
  j.concurrency_key AS "concurrencyKey", j.weight, j.admitted,
  j.schedule_id AS "scheduleId", j.schedule_tick AS "scheduleTick",
  j.idempotency_key AS "idempotencyKey", j.paused_from AS "pausedFrom"`;

/** The parents of job `j` (its dependency edges) as a JSON array, by parent id. */
export const jobDependenciesColumn = `
  coalesce((
    SELECT json_agg(json_build_object('jobId', d.parent_id, 'requiresSuccess', d.requires_success) ORDER BY d.parent_id)
    FROM job_dependency d WHERE d.child_id = j.id
  ), '[]') AS dependencies`;

/**
 * The phases of job `j` as a JSON array in declaration order. Data-modifying CTEs all see
 * the snapshot from before the statement, so a statement that also changes phases passes
 * their new state in itself rather than selecting this.
 */
export const jobPhasesColumn = `
  coalesce((
    SELECT json_agg(json_build_object('name', ph.name, 'state', ph.state, 'result', ph.result,
                                      'finishedAt', ph.finished_at) ORDER BY ph.position)
    FROM job_phase ph WHERE ph.job_id = j.id
  ), '[]') AS phases`;

const dateFields = ["runAt", "createdAt", "updatedAt", "startedAt", "finishedAt", "cancelRequestedAt", "scheduleTick"] as const;

/**
 * Normalises a row selected with {@link jobColumns}: the ORM's pool returns timestamps as
 * text, and phases built with `json_build_object` carry theirs as JSON strings.
 */
export function jobRowFromSql<T extends Partial<JobRow>>(row: T): T {
  const out: Record<string, unknown> = { ...row };
  for (const field of dateFields) {
    const value = out[field];
    if (typeof value === "string") out[field] = new Date(value);
  }
  if (Array.isArray(out.phases)) {
    out.phases = (out.phases as PhaseRow[]).map((phase) => ({
      ...phase,
      finishedAt: phase.finishedAt === null ? null : new Date(phase.finishedAt),
    }));
  }
  return out as T;
}
