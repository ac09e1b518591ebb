import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobCancelWaiting, jobRequestCancel } from "../store/sql/job-cancel.js";
import { jobSelectById } from "../store/sql/job-select.js";
import { withTransaction, type Queryable } from "../store/transaction.js";
import { JobNotFoundError, JobStateError, NotJobOwnerError } from "./job-errors.js";
import type { Principal } from "./principal.js";

/** What {@link cancelJob} did. */
export interface CancelOutcome {
  /** The job after the transaction. */
  job: JobRow;
  /** Set when a cancel request was recorded for a running job: its worker must be told. */
  requestedLease?: { workerId: string; leaseToken: string };
}

/**
 * Cancels a job, in one transaction that first locks the job row, so the decision and the
 * change see the same state:
 * - scheduled, pending, blocked or paused: `cancelled` at once, with its pending phases,
 *   and exactly one `cancelled` event;
 * - running: a cancel request is recorded (once) for the worker holding the lease;
 * - cancelled: nothing changes, the job is returned as it is;
 * - succeeded or failed: {@link JobStateError}.
 */
export async function cancelJob(db: Database, principal: Principal, id: string, reason: string): Promise<CancelOutcome> {
  return withTransaction(db.pool, async (tx) => {
    const job = await jobSelectById(tx, id, true);
    if (!job) throw new JobNotFoundError(id);
    if (job.owner !== principal.id && !principal.admin) throw new NotJobOwnerError(id);
    switch (job.state) {
      case "cancelled":
        return { job };
      case "succeeded":
      case "failed":
        throw new JobStateError(id, job.state, "cancel");
      case "running": {
        const [requested] = await jobRequestCancel(tx, [{ id, reason }], principal.id);
        return { job: await reread(tx, id), requestedLease: requested && { workerId: requested.workerId, leaseToken: requested.leaseToken } };
      }
      default:
        await jobCancelWaiting(tx, [{ id, reason }], principal.id);
        return { job: await reread(tx, id) };
    }
  });
}

async function reread(tx: Queryable, id: string): Promise<JobRow> {
  const job = await jobSelectById(tx, id, false);
  if (!job) throw new JobNotFoundError(id);
  return job;
}
