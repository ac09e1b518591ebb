import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobInsertMany, type NewJob } from "../store/sql/job-insert-many.js";
import { jobSelectByIds } from "../store/sql/job-select.js";
import { StatementBatcher } from "../store/statement-batcher.js";
import { withTransaction, type Queryable } from "../store/transaction.js";
import { idempotencyKeysDecide } from "./idempotency-keys.js";
import type { Principal } from "./principal.js";

interface OwnedJob {
  job: NewJob;
  owner: string;
}

/** What {@link JobEnqueuer.enqueue} did. */
export interface EnqueueOutcome {
  /** The created job; or, when deduplicated, the job holding the idempotency key. */
  job: JobRow;
  /** True when nothing was created because another job holds the key. */
  deduplicated: boolean;
}

/** What {@link JobEnqueuer.enqueueAll} did, per job in the order given. */
export interface BatchOutcome {
  /** The created job's id, or the id of the job holding its key. */
  jobIds: string[];
  /** True where nothing was created because another job holds the key. */
  deduplicated: boolean[];
}

/** Options of {@link JobEnqueuer}. */
export interface EnqueuerOptions {
  /** How long a finished job keeps its idempotency key when its queue sets no window. */
  idempotencyWindowMs: number;
}

/** Postgres's deadlock_detected: the transaction was rolled back and may simply run again. */
const deadlockDetected = "40P01";

/**
 * Creates jobs: each with its phases and its `enqueued` event, in one transaction.
 * Single enqueues arriving together share a statement and a commit (see
 * {@link StatementBatcher}); each is still all-or-nothing on its own, since a failed
 * shared statement is retried job by job. Jobs with an idempotency key take a separate
 * batcher and a transaction of a few statements (see `idempotency-keys.ts`), so that
 * jobs without one keep their single-statement path untouched.
 */
export class JobEnqueuer {
  readonly #singles: StatementBatcher<OwnedJob, JobRow>;
  readonly #keyed: StatementBatcher<OwnedJob, EnqueueOutcome>;

  constructor(
    private readonly db: Database,
    private readonly options: EnqueuerOptions,
  ) {
    this.#singles = new StatementBatcher((items) => this.#insert(items), { maxBatchSize: 1000, maxInFlight: 4 });
    this.#keyed = new StatementBatcher((items) => this.#insertKeyed(items), { maxBatchSize: 1000, maxInFlight: 4 });
  }

  /**
   * Creates one job owned by `principal` and returns it as stored; with an idempotency key
   * that another job holds, creates nothing and returns that job.
   */
  async enqueue(principal: Principal, job: NewJob): Promise<EnqueueOutcome> {
    if (!job.idempotencyKey) return { job: await this.#singles.submit({ job, owner: principal.id }), deduplicated: false };
    return this.#keyed.submit({ job, owner: principal.id });
  }

  /**
   * Creates many jobs atomically, in one transaction: every job to create with its phases
   * and its event, or nothing. Jobs whose idempotency key is held are not created (see
   * {@link BatchOutcome}). Without keys this is one statement.
   */
  async enqueueAll(principal: Principal, jobs: readonly NewJob[]): Promise<BatchOutcome> {
    const owners = jobs.map(() => principal.id);
    if (!jobs.some((job) => job.idempotencyKey)) {
      await jobInsertMany(this.db.pool, jobs, owners, false);
      return { jobIds: jobs.map((job) => job.id), deduplicated: jobs.map(() => false) };
    }
    return this.#inTransaction(async (tx) => {
      const keyed = jobs.filter((job) => job.idempotencyKey);
      const decisions = await idempotencyKeysDecide(tx, keyed, this.options.idempotencyWindowMs);
      const holderOf = new Map(keyed.map((job, index) => [job.id, decisions[index]!]));
      const created = jobs.filter((job) => !holderOf.get(job.id)?.deduplicated);
      if (created.length > 0) await jobInsertMany(tx, created, created.map(() => principal.id), false);
      return {
        jobIds: jobs.map((job) => holderOf.get(job.id)?.holderId ?? job.id),
        deduplicated: jobs.map((job) => holderOf.get(job.id)?.deduplicated ?? false),
      };
    });
  }

  async #insert(items: OwnedJob[]): Promise<JobRow[]> {
    return this.#insertReturning(this.db.pool, items);
  }

  async #insertKeyed(items: OwnedJob[]): Promise<EnqueueOutcome[]> {
    return this.#inTransaction(async (tx) => {
      const decisions = await idempotencyKeysDecide(tx, items.map((item) => item.job), this.options.idempotencyWindowMs);
      const created = items.filter((_, index) => !decisions[index]!.deduplicated);
      const rows = created.length > 0 ? await this.#insertReturning(tx, created) : [];
      const byId = new Map(rows.map((row) => [row.id, row]));
      const existing = new Set(decisions.filter((d) => !byId.has(d.holderId)).map((d) => d.holderId));
      for (const row of await jobSelectByIds(tx, [...existing])) byId.set(row.id, row);
      return items.map((_, index) => {
        const { holderId, deduplicated } = decisions[index]!;
        const job = byId.get(holderId);
        if (!job) throw new Error(`idempotency key holder ${holderId} not found`);
        return { job, deduplicated };
      });
    });
  }

  /** Inserts jobs and returns them as stored, in the order given, with their (pending) phases. */
  async #insertReturning(db: Queryable, items: readonly OwnedJob[]): Promise<JobRow[]> {
    const rows = await jobInsertMany(db, items.map((i) => i.job), items.map((i) => i.owner), true);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return items.map(({ job }) => {
      const row = byId.get(job.id);
      if (!row) throw new Error(`insert returned no row for job ${job.id}`);
      return { ...row, phases: job.phases.map((name) => ({ name, state: "pending", result: null, finishedAt: null })) };
    });
  }

  /**
   * One transaction, run again if Postgres broke a deadlock by rolling it back: only
   * possible when retention frees a key in the middle of overlapping keyed enqueues.
   */
  async #inTransaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withTransaction(this.db.pool, work);
      } catch (error) {
        if (attempt >= 3 || (error as { code?: unknown } | null)?.code !== deadlockDetected) throw error;
      }
    }
  }
}
