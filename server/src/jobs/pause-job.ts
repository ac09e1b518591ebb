import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobPauseWaiting, jobResumePaused } from "../store/sql/job-pause.js";
import { jobSelectById } from "../store/sql/job-select.js";
import { withTransaction, type Queryable } from "../store/transaction.js";
import { JobNotFoundError, JobStateError, NotJobOwnerError } from "./job-errors.js";
import type { Principal } from "./principal.js";

/**
 * Pauses a job, in one transaction that first locks the row, so the decision and the
 * change see the same state: scheduled, pending or blocked become `paused` with a `paused`
 * event. Running jobs are cancelled, not paused, and paused or finished jobs cannot be
 * paused: {@link JobStateError}.
 */
export async function pauseJob(db: Database, principal: Principal, id: string, reason: string): Promise<JobRow> {
  return withTransaction(db.pool, async (tx) => {
    await lockOwned(tx, principal, id, (state) => {
      if (state === "running") return "running jobs are cancelled (CancelJob) and not paused";
      return state === "scheduled" || state === "pending" || state === "blocked";
    }, "pause");
    await jobPauseWaiting(tx, id, reason, principal.id);
    return reread(tx, id);
  });
}

/**
 * Resumes a paused job into the state it was paused from (see `jobResumePaused`), in one
 * transaction with its `resumed` event; {@link JobStateError} unless it is paused.
 */
export async function resumeJob(db: Database, principal: Principal, id: string): Promise<JobRow> {
  return withTransaction(db.pool, async (tx) => {
    await lockOwned(tx, principal, id, (state) => state === "paused", "resume");
    await jobResumePaused(tx, id, principal.id);
    return reread(tx, id);
  });
}

/**
 * Locks the job and checks that `principal` may act on it and that `allowed` accepts its
 * state; `allowed` may instead return why not, which the error carries.
 */
async function lockOwned(
  tx: Queryable,
  principal: Principal,
  id: string,
  allowed: (state: JobRow["state"]) => boolean | string,
  action: string,
): Promise<void> {
  const job = await jobSelectById(tx, id, true);
  if (!job) throw new JobNotFoundError(id);
  if (job.owner !== principal.id && !principal.admin) throw new NotJobOwnerError(id);
  const verdict = allowed(job.state);
  if (verdict !== true) throw new JobStateError(id, job.state, action, verdict === false ? undefined : verdict);
}

async function reread(tx: Queryable, id: string): Promise<JobRow> {
  const job = await jobSelectById(tx, id, false);
  if (!job) throw new JobNotFoundError(id);
  return job;
}
