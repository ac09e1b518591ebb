import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobInsertMany, type NewJob } from "../store/sql/job-insert-many.js";
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

  /** Creates one job owned by `principal`; returns it as stored. */
  enqueue(principal: Principal, job: NewJob): Promise<JobRow> {
    return this.#singles.submit({ job, owner: principal.id });
  }

  /**
   * Creates many jobs atomically, in one transaction of one statement: every job with its
   * phases and its event, or nothing. Returns the ids in the order given.
   */
  async enqueueAll(principal: Principal, jobs: readonly NewJob[]): Promise<string[]> {
    await jobInsertMany(this.db.pool, jobs, jobs.map(() => principal.id), false);
    return jobs.map((job) => job.id);
  }

  async #insert(items: OwnedJob[]): Promise<JobRow[]> {
    const rows = await jobInsertMany(this.db.pool, items.map((i) => i.job), items.map((i) => i.owner), true);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return items.map(({ job }) => {
      const row = byId.get(job.id);
      if (!row) throw new Error(`insert returned no row for job ${job.id}`);
      return { ...row, phases: job.phases.map((name) => ({ name, state: "pending", result: null, finishedAt: null })) };
    });
  }
}
