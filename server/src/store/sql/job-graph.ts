import { queueAddressesOf, type QueueAddress } from "../../dispatch/queue-address.js";
import type { Queryable } from "../transaction.js";
import { jobCancelWaiting, jobRequestCancel, waitingStates, type RequestedCancel } from "./job-cancel.js";

/** What one settle step changed, for the wake-ups after its commit. */
export interface SettleOutcome {
  /** Finished jobs settled in this step. */
  settled: number;
  /** Queues where children became pending. */
  readyQueues: QueueAddress[];
  /** Earliest run_at of children that became scheduled; null if none. */
  scheduledAt: Date | null;
  /** Running jobs asked to stop by dead-end cancellation: their workers must be told. */
  cancelRequests: RequestedCancel[];
}

/** Who a change made by the resolver is attributed to, in event data. */
const resolverPrincipal = "jobwire:dependencies";

/**
 * Settles up to `limit` finished jobs of job graphs, in the caller's transaction, which
 * locks them (`SKIP LOCKED`: replicas share the work, each job is settled once):
 * 1. each blocked (or paused) child with a `requires_success` parent that failed or was
 *    cancelled is cancelled, its reason naming that parent;
 * 2. each blocked child whose parents have all finished otherwise becomes pending (or
 *    scheduled, before its run_at), with an `unblocked` event;
 * 3. from each cancelled job that walks dead ends, every unfinished parent that is not a
 *    barrier and whose dependants are all cancelled is cancelled too (a running one gets a
 *    cancel request), and walks on in its turn;
 * 4. the settled jobs leave the resolver's index.
 * Jobs cancelled here are themselves settled by a later step: one transaction per step of
 * the propagation, each with its events.
 */
export async function jobGraphSettleStep(tx: Queryable, limit: number): Promise<SettleOutcome> {
  // Named: the resolver runs it on every pass while any graph or batch is open.
  const { rows: finished } = await tx.query<{ id: string; state: string; walks: boolean }>({
    name: "jobwire_graph_settle_finished",
    text: `SELECT id, state, cancel_unneeded_parents AS walks FROM job
     WHERE graph_pending AND state IN ('succeeded', 'failed', 'cancelled')
     ORDER BY finished_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
    values: [limit],
  });
  const outcome: SettleOutcome = { settled: finished.length, readyQueues: [], scheduledAt: null, cancelRequests: [] };
  if (finished.length === 0) return outcome;
  const ids = finished.map((job) => job.id);

  // Children: a verdict from all their parents as they are now. The parents are held
  // (KEY SHARE: completions go on, a RetryJob waits) so that the verdict stays true until
  // commit, and the children to change are locked in id order, the order every bulk change
  // locks in, so that no two such transactions deadlock.
  await tx.query(
    `SELECT 1 FROM job WHERE id IN (
       SELECT parent_id FROM job_dependency WHERE child_id IN (SELECT child_id FROM job_dependency WHERE parent_id = ANY($1::uuid[])))
     ORDER BY id FOR KEY SHARE`,
    [ids],
  );
  const { rows: verdicts } = await tx.query<{ childId: string; failedParent: string | null; failedState: string | null; allFinished: boolean }>(
    `SELECT d.child_id AS "childId",
            (array_agg(p.id::text ORDER BY p.id) FILTER (WHERE d.requires_success AND p.state IN ('failed', 'cancelled')))[1] AS "failedParent",
            (array_agg(p.state::text ORDER BY p.id) FILTER (WHERE d.requires_success AND p.state IN ('failed', 'cancelled')))[1] AS "failedState",
            bool_and(p.state IN ('succeeded', 'failed', 'cancelled')) AS "allFinished"
     FROM job_dependency d JOIN job p ON p.id = d.parent_id
     WHERE d.child_id IN (SELECT child_id FROM job_dependency WHERE parent_id = ANY($1::uuid[]))
     GROUP BY d.child_id`,
    [ids],
  );
  await tx.query("SELECT 1 FROM job WHERE id = ANY($1::uuid[]) AND state IN ('blocked', 'paused') ORDER BY id FOR NO KEY UPDATE", [
    verdicts.filter((v) => v.failedParent !== null || v.allFinished).map((v) => v.childId),
  ]);
  const doomed = verdicts.filter((v) => v.failedParent !== null);
  await jobCancelWaiting(
    tx,
    doomed.map((v) => ({ id: v.childId, reason: `dependency ${v.failedParent} ${v.failedState}` })),
    resolverPrincipal,
    ["blocked", "paused"],
  );
  const runnable = verdicts.filter((v) => v.failedParent === null && v.allFinished).map((v) => v.childId);
  if (runnable.length > 0) {
    const { rows } = await tx.query<{ namespace: string; queue: string; state: string; runAt: Date }>(
      `WITH unblocked AS (
         UPDATE job SET state = (CASE WHEN run_at > clock_timestamp() THEN 'scheduled' ELSE 'pending' END)::job_state,
                        updated_at = clock_timestamp()
         WHERE id = ANY($1::uuid[]) AND state = 'blocked'
         RETURNING id, namespace, queue, attempt, state, run_at
       ),
       events AS (
         INSERT INTO job_event (job_id, queue, type, attempt, data)
         SELECT id, queue, 'unblocked', attempt, jsonb_build_object('state', state, 'run_at', run_at) FROM unblocked
       )
       SELECT namespace, queue, state::text AS state, run_at AS "runAt" FROM unblocked`,
      [runnable],
    );
    // A child paused while blocked now resumes to where it would be had it not been paused.
    await tx.query(
      `WITH unblocked AS (
         UPDATE job SET paused_from = (CASE WHEN run_at > clock_timestamp() THEN 'scheduled' ELSE 'pending' END)::job_state,
                        updated_at = clock_timestamp()
         WHERE id = ANY($1::uuid[]) AND state = 'paused' AND paused_from = 'blocked'
         RETURNING id, queue, attempt, paused_from
       )
       INSERT INTO job_event (job_id, queue, type, attempt, data)
       SELECT id, queue, 'unblocked', attempt, jsonb_build_object('state', 'paused', 'resumes_to', paused_from) FROM unblocked`,
      [runnable],
    );
    outcome.readyQueues = [...queueAddressesOf(rows.filter((r) => r.state === "pending"))];
    const scheduled = rows.filter((r) => r.state === "scheduled").map((r) => new Date(r.runAt).getTime());
    if (scheduled.length > 0) outcome.scheduledAt = new Date(Math.min(...scheduled));
  }

  // Dead ends: parents that only cancelled jobs still needed.
  const walkers = finished.filter((job) => job.state === "cancelled" && job.walks).map((job) => job.id);
  if (walkers.length > 0) {
    const { rows: unneeded } = await tx.query<{ id: string; state: string }>(
      `SELECT p.id, p.state::text AS state FROM job p
       WHERE p.id IN (SELECT parent_id FROM job_dependency WHERE child_id = ANY($1::uuid[]))
         AND NOT p.barrier AND p.state NOT IN ('succeeded', 'failed', 'cancelled')
         AND NOT EXISTS (SELECT 1 FROM job_dependency d JOIN job c ON c.id = d.child_id
                         WHERE d.parent_id = p.id AND c.state <> 'cancelled')
       FOR NO KEY UPDATE OF p`,
      [walkers],
    );
    if (unneeded.length > 0) {
      const reason = "no longer needed: every job depending on it was cancelled";
      // They walk on once cancelled.
      await tx.query("UPDATE job SET cancel_unneeded_parents = true WHERE id = ANY($1::uuid[])", [unneeded.map((p) => p.id)]);
      const waiting = unneeded.filter((p) => (waitingStates as readonly string[]).includes(p.state));
      await jobCancelWaiting(tx, waiting.map((p) => ({ id: p.id, reason })), resolverPrincipal);
      const running = unneeded.filter((p) => p.state === "running");
      outcome.cancelRequests = await jobRequestCancel(tx, running.map((p) => ({ id: p.id, reason })), resolverPrincipal);
    }
  }

  await tx.query("UPDATE job SET graph_pending = false WHERE id = ANY($1::uuid[])", [ids]);
  return outcome;
}

/** The states of a job that has not finished. */
const unfinishedStates = "('scheduled', 'pending', 'blocked', 'paused', 'running')";

/**
 * For each open batch, one of its jobs that was unfinished when last looked at: while that
 * job stays unfinished, so does its batch, and one primary-key probe says so. Looking for
 * any unfinished job of a batch instead walks the index entries its finished jobs left
 * behind, which cost 8 ms a pass on a 1,000-job batch half drained. Kept per replica; only
 * a hint, since a batch is finished under its row lock after a full check.
 */
export type BatchWitnesses = Map<string, string>;

/**
 * Finishes every open batch that has no unfinished job left: sets its `finished_at` and
 * writes its one `batch_finished` event with the count of jobs per state. Guarded by
 * `finished_at IS NULL` under the row lock, so concurrent replicas write the event once.
 * Looks at a batch only when its witness in `witnesses` has finished (then picks the
 * unfinished job a claim will take last as the next one), and updates them.
 * Returns how many batches it finished.
 */
export async function batchFinishDone(db: Queryable, witnesses: BatchWitnesses): Promise<number> {
  const { rows } = await db.query<{ batchId: string; witness: string | null }>({
    name: "jobwire_batch_witnesses",
    text: `SELECT b.id AS "batchId",
                  CASE WHEN EXISTS (SELECT 1 FROM job j WHERE j.id = w.witness AND j.batch_id = b.id AND j.state IN ${unfinishedStates})
                       THEN w.witness
                       -- The job a claim will take last. No index gives this order, so the plan
                       -- reads the batch's unfinished jobs through job_batch_idx; "ORDER BY id
                       -- DESC" let a generic plan walk the whole primary key backwards instead.
                       ELSE (SELECT j.id FROM job j WHERE j.batch_id = b.id AND j.state IN ${unfinishedStates}
                             ORDER BY j.priority, j.run_at DESC, j.id DESC LIMIT 1)
                  END AS witness
           FROM batch b
           LEFT JOIN unnest($1::uuid[], $2::uuid[]) AS w(batch_id, witness) ON w.batch_id = b.id
           WHERE b.finished_at IS NULL`,
    values: [[...witnesses.keys()], [...witnesses.values()]],
  });
  witnesses.clear();
  const maybeDone: string[] = [];
  for (const row of rows) {
    if (row.witness === null) maybeDone.push(row.batchId);
    else witnesses.set(row.batchId, row.witness);
  }
  if (maybeDone.length === 0) return 0;
  const result = await db.query({
    name: "jobwire_batch_finish_done",
    text: `WITH done AS (
             UPDATE batch b SET finished_at = clock_timestamp()
             WHERE b.id = ANY($1::uuid[]) AND b.finished_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM job j WHERE j.batch_id = b.id AND j.state IN ${unfinishedStates})
             RETURNING b.id
           )
           INSERT INTO job_event (job_id, queue, batch_id, type, attempt, data)
           SELECT NULL, NULL, d.id, 'batch_finished', 0,
                  jsonb_build_object('counts', coalesce((SELECT jsonb_object_agg(state, n)
                                                         FROM (SELECT state, count(*) AS n FROM job
                                                               WHERE batch_id = d.id GROUP BY state) c), '{}'))
           FROM done d`,
    values: [maybeDone],
  });
  return result.rowCount ?? 0;
}

/**
 * Whether the graph resolver has anything to watch: an unfinished batch, or a job of a
 * graph not yet settled. Two index probes.
 */
export async function graphsActive(db: Queryable): Promise<boolean> {
  const result = await db.query<{ active: boolean }>({
    name: "jobwire_graphs_active",
    text: `SELECT EXISTS (SELECT 1 FROM batch WHERE finished_at IS NULL) OR EXISTS (SELECT 1 FROM job WHERE graph_pending) AS active`,
  });
  return result.rows[0]?.active ?? true;
}
