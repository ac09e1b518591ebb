import type { Queryable } from "../transaction.js";
import { jsonById, roundsOfDistinctIds } from "./json-by-id.js";

/** How a report about a lease went. */
export type LeaseReportOutcome =
  /** The report changed the job. */
  | { kind: "applied"; workerId: string }
  /** The same report was already applied with this lease: answered OK, nothing changed. */
  | { kind: "repeated" }
  /** The lease is not current (expired, revoked, or another attempt holds the job). */
  | { kind: "lost" }
  /** No such job. */
  | { kind: "not_found" };

/** One completion to apply. */
export interface Completion {
  jobId: string;
  leaseToken: string;
  resultJson: string;
}

/**
 * Completes running jobs with their results and writes their `succeeded` events, in one
 * statement for the whole set (one per round if a job is named twice), each guarded by its
 * lease (job id, fencing token, running).
 * For a completion whose guard failed, tells a repeat of the same completion (the job
 * succeeded with this very lease) from a lost lease. Results are in the order given.
 */
export async function jobCompleteMany(db: Queryable, completions: readonly Completion[]): Promise<LeaseReportOutcome[]> {
  // Values are looked up by job id, so a job reported twice in one batch (an old lease
  // and the current one) has each report in a statement of its own, in order.
  const applied = new Map<Completion, string>();
  for (const round of roundsOfDistinctIds(completions, (c) => c.jobId)) {
    const ids = round.map((c) => c.jobId);
    const result = await db.query<{ id: string; worker: string }>({
      name: "jobwire_job_complete_many",
      text: `WITH completed AS (
         UPDATE job j SET state = 'succeeded', result = ($2::jsonb -> j.id::text) -> 1, finished_at = clock_timestamp(),
                          updated_at = clock_timestamp(), lease_expires_at = NULL, deadline_at = NULL
         -- Each job's [token, result] looked up by its id (see jsonById). The state compared
         -- as text: "state = 'running'" let a generic plan scan a partial index of running
         -- jobs (which has no id) in full on every call (decision 0006).
         WHERE j.id = ANY($1::uuid[]) AND j.lease_token = (($2::jsonb -> j.id::text) ->> 0)::bigint AND j.state::text = 'running'
         RETURNING j.id, j.queue, j.attempt, j.lease_worker, j.owner, j.namespace
       ),
       events AS (
         -- Owner and namespace given: the event trigger need not look them up, row by row.
         INSERT INTO job_event (job_id, queue, type, attempt, data, owner, namespace)
         SELECT id, queue, 'succeeded', attempt, '{}'::jsonb, owner, namespace FROM completed
       )
       SELECT id, lease_worker AS worker FROM completed`,
      values: [ids, jsonById(ids, round.map((c) => `[${JSON.stringify(c.leaseToken)},${c.resultJson}]`))],
    });
    const workers = new Map(result.rows.map((row) => [row.id, row.worker]));
    for (const c of round) {
      const worker = workers.get(c.jobId);
      if (worker !== undefined) applied.set(c, worker);
    }
  }
  const unapplied = completions.filter((c) => !applied.has(c));
  const current = new Map<string, { state: string; token: string | null }>();
  if (unapplied.length > 0) {
    const rows = await db.query<{ id: string; state: string; token: string | null }>(
      "SELECT id, state, lease_token::text AS token FROM job WHERE id = ANY($1::uuid[])",
      [unapplied.map((c) => c.jobId)],
    );
    for (const row of rows.rows) current.set(row.id, row);
  }
  return completions.map((c): LeaseReportOutcome => {
    const worker = applied.get(c);
    if (worker !== undefined) return { kind: "applied", workerId: worker };
    const row = current.get(c.jobId);
    if (!row) return { kind: "not_found" };
    return row.state === "succeeded" && row.token === c.leaseToken ? { kind: "repeated" } : { kind: "lost" };
  });
}
