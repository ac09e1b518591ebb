import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobRetryFinished } from "../store/sql/job-retry.js";
import { jobSelectById } from "../store/sql/job-select.js";
import { withTransaction } from "../store/transaction.js";
import { JobNotFoundError, JobStateError, NotJobOwnerError } from "./job-errors.js";
import type { Principal } from "./principal.js";

/**
 * Runs a failed or cancelled job again: it becomes `pending` with a `retried` event, in
 * one transaction that locks the row first. `fromStart` drops completed phase results;
 * otherwise they are kept and the job resumes at its first unfinished phase. Any other
 * state is a {@link JobStateError}.
 */
export async function retryJob(db: Database, principal: Principal, id: string, fromStart: boolean): Promise<JobRow> {
  return withTransaction(db.pool, async (tx) => {
    const job = await jobSelectById(tx, id, true);
    if (!job) throw new JobNotFoundError(id);
    if (job.owner !== principal.id && !principal.admin) throw new NotJobOwnerError(id);
    if (job.state !== "failed" && job.state !== "cancelled") throw new JobStateError(id, job.state, "retry");
    await jobRetryFinished(tx, id, fromStart, principal.id);
    const after = await jobSelectById(tx, id, false);
    if (!after) throw new JobNotFoundError(id);
    return after;
  });
}
