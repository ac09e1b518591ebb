import { raw, type FilterQuery } from "@mikro-orm/core";
import type { Database } from "../store/orm.js";
import { JobEntity, type JobRecord } from "../store/entities/job.js";
import type { JobStateName } from "../store/entities/job-state.js";
import type { JobRow } from "../store/job-row.js";
import { jobDependencySelect } from "../store/sql/job-dependency.js";
import { JobNotFoundError } from "./job-errors.js";

/**
 * Reads one job with its phases; {@link JobNotFoundError} if there is none. The request
 * gate has checked that the job is of the caller's namespace.
 */
export async function getJob(db: Database, id: string): Promise<JobRow> {
  const em = db.orm.em.fork();
  const job = await em.findOne(JobEntity, { id }, { populate: ["phases"] });
  if (!job) throw new JobNotFoundError(id);
  return (await withDependencies(db, [jobRowFromRecord(job)]))[0]!;
}

/** What {@link listJobs} filters on; empty arrays and unset fields match everything. */
export interface JobFilter {
  queues: string[];
  kinds: string[];
  states: JobStateName[];
  /** RFC 3339 with microseconds (Postgres's precision); see `rfc3339FromTimestamp`. */
  createdAfter: string | undefined;
  createdBefore: string | undefined;
  metadata: Record<string, string>;
  /** Only jobs of this namespace. */
  namespace: string;
  /** Only jobs of this owner (a producer sees its own); unset: every owner's. */
  owner?: string;
}

/**
 * Lists jobs newest first (by id: UUIDv7, time-ordered), `limit` at most, strictly after
 * the cursor `afterId` in that order. Keyset pagination on the unique id neither skips
 * nor repeats a job when others are inserted between pages.
 */
export async function listJobs(db: Database, filter: JobFilter, limit: number, afterId: string | undefined): Promise<JobRow[]> {
  const em = db.orm.em.fork();
  const where: FilterQuery<JobRecord> = { namespace: filter.namespace };
  if (filter.queues.length > 0) where.queue = { $in: filter.queues };
  if (filter.kinds.length > 0) where.kind = { $in: filter.kinds };
  if (filter.states.length > 0) where.state = { $in: filter.states };
  if (filter.createdAfter || filter.createdBefore) {
    where.createdAt = {
      // Compared in SQL at microsecond precision: a JS Date would round to milliseconds.
      ...(filter.createdAfter ? { $gte: raw("?::timestamptz", [filter.createdAfter]) } : {}),
      ...(filter.createdBefore ? { $lt: raw("?::timestamptz", [filter.createdBefore]) } : {}),
    };
  }
  if (Object.keys(filter.metadata).length > 0) where.metadata = { $contains: filter.metadata } as never;
  if (filter.owner !== undefined) where.owner = filter.owner;
  if (afterId) where.id = { $lt: afterId };
  const jobs = await em.find(JobEntity, where, { populate: ["phases"], orderBy: { id: "desc" }, limit });
  return withDependencies(db, jobs.map(jobRowFromRecord));
}

/** Fills in the parents of each job, in one query. */
async function withDependencies(db: Database, jobs: JobRow[]): Promise<JobRow[]> {
  if (jobs.length === 0) return jobs;
  const byChild = await jobDependencySelect(db.pool, jobs.map((job) => job.id));
  return jobs.map((job) => ({ ...job, dependencies: byChild.get(job.id) ?? [] }));
}

function jobRowFromRecord(job: JobRecord): JobRow {
  return {
    id: job.id,
    namespace: job.namespace,
    queue: job.queue,
    kind: job.kind,
    state: job.state,
    priority: job.priority,
    payload: job.payload,
    metadata: job.metadata,
    owner: job.owner,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    backoffInitialMs: Number(job.backoffInitialMs),
    backoffMaxMs: Number(job.backoffMaxMs),
    backoffMultiplier: Number(job.backoffMultiplier),
    backoffJitter: Number(job.backoffJitter),
    leaseTimeoutMs: job.leaseTimeoutMs,
    executionTimeoutMs: job.executionTimeoutMs ?? null,
    runAt: job.runAt,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    startedAt: job.startedAt ?? null,
    finishedAt: job.finishedAt ?? null,
    cancelRequestedAt: job.cancelRequestedAt ?? null,
    cancelReason: job.cancelReason ?? null,
    progress: job.progress ?? null,
    result: job.result ?? null,
    lastError: job.lastError ?? null,
    webhooks: job.webhooks ?? null,
    batchId: job.batchId ?? null,
    ref: job.ref ?? null,
    dependencies: [],
    cancelUnneededParents: job.cancelUnneededParents,
    barrier: job.barrier,
    concurrencyKey: job.concurrencyKey ?? null,
    weight: job.weight,
    admitted: job.admitted,
    scheduleId: job.scheduleId ?? null,
    scheduleTick: job.scheduleTick ?? null,
    idempotencyKey: job.idempotencyKey ?? null,
    pausedFrom: job.pausedFrom ?? null,
    phases: job.phases.getItems().map((phase) => ({
      name: phase.name,
      state: phase.state,
      result: phase.result ?? null,
      finishedAt: phase.finishedAt ?? null,
    })),
  };
}
