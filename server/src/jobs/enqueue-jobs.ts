import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobInsertMany, type GraphInsert, type NewJob } from "../store/sql/job-insert-many.js";
import { withTransaction } from "../store/transaction.js";
import { ParentsNotFoundError } from "./job-errors.js";
import { StatementBatcher } from "../store/statement-batcher.js";
import type { Principal } from "./principal.js";

interface OwnedJob {
  job: NewJob;
  owner: string;
}

/**
 * Creates jobs: each with its phases and its `enqueued` event, in one transaction.
 * Single enqueues arriving together share a statement and a commit (see
 * {@link StatementBatcher}); each is still all-or-nothing on its own, since a failed
 * shared statement is retried job by job.
 */
export class JobEnqueuer {
  readonly #singles: StatementBatcher<OwnedJob, JobRow>;

  constructor(private readonly db: Database) {
    this.#singles = new StatementBatcher((items) => this.#insert(items), { maxBatchSize: 1000, maxInFlight: 4 });
  }

  /**
   * Creates one job owned by `principal`; returns it as stored. A job with dependencies
   * takes {@link enqueueGraph}'s path, the others share statements with concurrent calls.
   */
  async enqueue(principal: Principal, job: NewJob, graph?: GraphInsert): Promise<JobRow> {
    if (!graph || graph.edges.length === 0) return this.#singles.submit({ job, owner: principal.id });
    const [row] = await this.enqueueGraph(principal, [job], graph, true);
    if (!row) throw new Error(`insert returned no row for job ${job.id}`);
    return withNewPhases(row, job);
  }

  /**
   * Creates many jobs atomically: every job with its phases and its event, the batch and
   * the dependency edges of `graph`, or nothing. One statement; when jobs depend on
   * existing jobs, those are first locked against deletion in the same transaction, and
   * {@link ParentsNotFoundError} names the ones that do not exist. Returns the jobs as
   * stored when `returning` is set, else nothing.
   */
  async enqueueGraph(principal: Principal, jobs: readonly NewJob[], graph: GraphInsert, returning = false): Promise<Omit<JobRow, "phases">[]> {
    const owners = jobs.map(() => principal.id);
    if (graph.existingParentIds.length === 0) return jobInsertMany(this.db.pool, jobs, owners, returning, graph);
    return withTransaction(this.db.pool, async (tx) => {
      const { rows } = await tx.query<{ id: string }>("SELECT id FROM job WHERE id = ANY($1::uuid[]) FOR KEY SHARE", [graph.existingParentIds]);
      const found = new Set(rows.map((row) => row.id));
      const missing = graph.existingParentIds.filter((id) => !found.has(id));
      if (missing.length > 0) throw new ParentsNotFoundError(missing);
      return jobInsertMany(tx, jobs, owners, returning, graph);
    });
  }

  async #insert(items: OwnedJob[]): Promise<JobRow[]> {
    const rows = await jobInsertMany(this.db.pool, items.map((i) => i.job), items.map((i) => i.owner), true);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return items.map(({ job }) => {
      const row = byId.get(job.id);
      if (!row) throw new Error(`insert returned no row for job ${job.id}`);
      return withNewPhases(row, job);
    });
  }
}

/** A just-inserted job row with its declared phases, all pending. */
function withNewPhases(row: Omit<JobRow, "phases">, job: NewJob): JobRow {
  return { ...row, phases: job.phases.map((name) => ({ name, state: "pending", result: null, finishedAt: null })) };
}
