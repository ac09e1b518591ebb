import type { Database } from "../store/orm.js";
import { batchLockUnfinishedJobs, batchSelect } from "../store/sql/batch.js";
import { jobCancelWaiting, jobRequestCancel, type RequestedCancel } from "../store/sql/job-cancel.js";
import { withTransaction } from "../store/transaction.js";
import { BatchNotFoundError, NotBatchOwnerError } from "./job-errors.js";
import type { Principal } from "./principal.js";

/** What {@link cancelBatch} did. */
export interface CancelBatchOutcome {
  /** Jobs cancelled at once. */
  cancelled: number;
  /** Cancel requests recorded for running jobs: their workers must be told. */
  requests: RequestedCancel[];
  /** Jobs left as they were: finished, or running with a cancel already requested. */
  alreadyFinished: number;
}

/**
 * Cancels every unfinished job of a batch in one transaction that first locks the batch
 * and its unfinished jobs (in id order): waiting jobs become `cancelled` at once, with
 * their phases and one event each; running jobs get a cancel request (once) for their
 * workers, the same path as CancelJob. Jobs blocked behind the batch's cancelled jobs are
 * among them; jobs outside the batch that depend on them are settled by the graph resolver.
 */
export async function cancelBatch(db: Database, principal: Principal, batchId: string, reason: string): Promise<CancelBatchOutcome> {
  return withTransaction(db.pool, async (tx) => {
    const batch = await batchSelect(tx, batchId, true);
    if (!batch) throw new BatchNotFoundError(batchId);
    if (batch.owner !== principal.id && !principal.admin) throw new NotBatchOwnerError(batchId);
    const unfinished = await batchLockUnfinishedJobs(tx, batchId);
    const cancelled = await jobCancelWaiting(
      tx,
      unfinished.filter((job) => job.state !== "running").map((job) => ({ id: job.id, reason })),
      principal.id,
    );
    const requests = await jobRequestCancel(
      tx,
      unfinished.filter((job) => job.state === "running" && !job.cancelRequested).map((job) => ({ id: job.id, reason })),
      principal.id,
    );
    return { cancelled: cancelled.length, requests, alreadyFinished: batch.total - cancelled.length - requests.length };
  });
}
