import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobInsertMany, type NewJob } from "../store/sql/job-insert-many.js";
import type { Principal } from "./principal.js";

/**
 * Creates one job, its phases and its `enqueued` event in one transaction, owned by
 * `principal`. Returns the job as stored.
 */
export async function enqueueJob(db: Database, principal: Principal, job: NewJob): Promise<JobRow> {
  const [row] = await jobInsertMany(db.pool, [job], principal.id, true);
  if (!row) throw new Error("insert returned no row");
  return {
    ...row,
    phases: job.phases.map((name) => ({ name, state: "pending", result: null, finishedAt: null })),
  };
}

/**
 * Creates many jobs atomically, in one transaction of one statement: every job with its
 * phases and its event, or nothing. Returns the ids in the order given.
 */
export async function enqueueJobs(db: Database, principal: Principal, jobs: readonly NewJob[]): Promise<string[]> {
  await jobInsertMany(db.pool, jobs, principal.id, false);
  return jobs.map((job) => job.id);
}
