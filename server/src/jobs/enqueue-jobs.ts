import type { Database } from "../store/orm.js";
import type { JobRow } from "../store/job-row.js";
import { jobInsertMany, type DependencyEdge, type GraphInsert, type JobOwner, type NewJob } from "../store/sql/job-insert-many.js";
import { jobSelectByIds } from "../store/sql/job-select.js";
import { StatementBatcher } from "../store/statement-batcher.js";
import { withTransaction, type Queryable } from "../store/transaction.js";
import { idempotencyKeysDecide } from "./idempotency-keys.js";
import { ParentsNotFoundError } from "./job-errors.js";
import type { Principal } from "./principal.js";

interface OwnedJob {
  job: NewJob;
  owner: JobOwner;
}

/** What {@link JobEnqueuer.enqueue} did. */
export interface EnqueueOutcome {
  /** The created job; or, when deduplicated, the job holding the idempotency key. */
  job: JobRow;
  /** True when nothing was created because another job holds the key. */
  deduplicated: boolean;
}

/** What {@link JobEnqueuer.enqueueGraph} did, per job in the order given. */
export interface BatchOutcome {
  /** The created job's id, or the id of the job holding its key. */
  jobIds: string[];
  /** True where nothing was created because another job holds the key. */
  deduplicated: boolean[];
  /** The created jobs as stored (without phases), when asked for. */
  rows: Omit<JobRow, "phases">[];
  /** Whether the batch row was created (not when every job was deduplicated). */
  batchCreated: boolean;
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
 * batcher and a transaction of a few statements (see `idempotency-keys.ts`), and jobs with
 * dependencies a transaction of their own, so that plain jobs keep their single-statement
 * path untouched.
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
   * that another job holds, creates nothing and returns that job. A job with dependencies
   * takes {@link enqueueGraph}'s path.
   */
  async enqueue(principal: Principal, job: NewJob, graph?: GraphInsert): Promise<EnqueueOutcome> {
    if (graph && graph.edges.length > 0) {
      const outcome = await this.enqueueGraph(principal, [job], graph, true);
      if (outcome.deduplicated[0]) {
        const [holder] = await jobSelectByIds(this.db.pool, [outcome.jobIds[0]!]);
        if (!holder) throw new Error(`idempotency key holder ${outcome.jobIds[0]} not found`);
        return { job: holder, deduplicated: true };
      }
      const row = outcome.rows[0];
      if (!row) throw new Error(`insert returned no row for job ${job.id}`);
      return { job: withNewPhases(row, job), deduplicated: false };
    }
    const owner = ownerOf(principal);
    if (!job.idempotencyKey) return { job: await this.#singles.submit({ job, owner }), deduplicated: false };
    return this.#keyed.submit({ job, owner });
  }

  /**
   * Creates many jobs atomically: every job to create with its phases and its event, the
   * batch and the dependency edges of `graph`, or nothing. Jobs whose idempotency key is
   * held are not created; an edge to one leads to the job holding the key instead, and its
   * own edges are dropped with it. Plain jobs take one statement; with keys, or with parents
   * among existing jobs (locked against deletion first: {@link ParentsNotFoundError} names
   * those that do not exist), a transaction of a few.
   */
  async enqueueGraph(principal: Principal, jobs: readonly NewJob[], graph: GraphInsert, returning = false): Promise<BatchOutcome> {
    const owner = ownerOf(principal);
    const owners = jobs.map(() => owner);
    const keyed = jobs.filter((job) => job.idempotencyKey);
    if (keyed.length === 0 && graph.existingParentIds.length === 0) {
      const rows = await jobInsertMany(this.db.pool, jobs, owners, returning, graph);
      return { jobIds: jobs.map((job) => job.id), deduplicated: jobs.map(() => false), rows, batchCreated: graph.batch !== null };
    }
    return this.#inTransaction(async (tx) => {
      if (graph.existingParentIds.length > 0) {
        // A parent of another namespace is unknown here, as one that does not exist.
        const { rows } = await tx.query<{ id: string }>("SELECT id FROM job WHERE id = ANY($1::uuid[]) AND namespace = $2 FOR KEY SHARE", [
          graph.existingParentIds,
          principal.namespace,
        ]);
        const found = new Set(rows.map((row) => row.id));
        const missing = graph.existingParentIds.filter((id) => !found.has(id));
        if (missing.length > 0) throw new ParentsNotFoundError(missing);
      }
      const decisions = await idempotencyKeysDecide(tx, keyed.map((job) => ({ job, owner })), this.options.idempotencyWindowMs);
      const holderOf = new Map(keyed.map((job, index) => [job.id, decisions[index]!]));
      const isDuplicate = (id: string) => holderOf.get(id)?.deduplicated ?? false;
      const created = jobs.filter((job) => !isDuplicate(job.id));
      const edges: DependencyEdge[] = graph.edges
        .filter((edge) => !isDuplicate(edge.childId))
        .map((edge) => (isDuplicate(edge.parentId) ? { ...edge, parentId: holderOf.get(edge.parentId)!.holderId } : edge));
      const holdersAsParents = edges.map((edge) => edge.parentId).filter((id) => !jobs.some((job) => job.id === id));
      const rows = created.length === 0
        ? []
        : await jobInsertMany(tx, created, created.map(() => owner), returning, {
            batch: graph.batch,
            edges,
            existingParentIds: [...new Set([...graph.existingParentIds, ...holdersAsParents])],
          });
      return {
        jobIds: jobs.map((job) => holderOf.get(job.id)?.holderId ?? job.id),
        deduplicated: jobs.map((job) => isDuplicate(job.id)),
        rows,
        batchCreated: graph.batch !== null && created.length > 0,
      };
    });
  }

  async #insert(items: OwnedJob[]): Promise<JobRow[]> {
    return this.#insertReturning(this.db.pool, items);
  }

  async #insertKeyed(items: OwnedJob[]): Promise<EnqueueOutcome[]> {
    return this.#inTransaction(async (tx) => {
      const decisions = await idempotencyKeysDecide(tx, items, this.options.idempotencyWindowMs);
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
      return withNewPhases(row, job);
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

/** A just-inserted job row with its declared phases, all pending. */
function withNewPhases(row: Omit<JobRow, "phases">, job: NewJob): JobRow {
  return { ...row, phases: job.phases.map((name) => ({ name, state: "pending", result: null, finishedAt: null })) };
}

/** The owner a principal's new jobs record: the principal, in its namespace. */
function ownerOf(principal: Principal): JobOwner {
  return { namespace: principal.namespace, id: principal.id };
}
