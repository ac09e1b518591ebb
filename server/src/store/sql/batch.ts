import type { JobStateName } from "../entities/job-state.js";
import type { Queryable } from "../transaction.js";

/** A batch as stored, with the count of its jobs per state. */
export interface BatchRow {
  id: string;
  owner: string;
  total: number;
  counts: Partial<Record<JobStateName, number>>;
  createdAt: Date;
  finishedAt: Date | null;
}

/** What {@link batchSelectPage} filters on. */
export interface BatchFilter {
  finished: boolean | undefined;
  /** RFC 3339 with microseconds; see `rfc3339FromTimestamp`. */
  createdAfter: string | undefined;
  createdBefore: string | undefined;
  /** Only batches of this namespace. */
  namespace: string;
  /** Only batches of this owner (a producer sees its own); unset: every owner's. */
  owner?: string;
}

const columns = `b.id, b.owner, b.total, b.created_at AS "createdAt", b.finished_at AS "finishedAt",
  coalesce((SELECT jsonb_object_agg(state, n) FROM (SELECT state, count(*)::int AS n FROM job
            WHERE batch_id = b.id GROUP BY state) c), '{}') AS counts`;

/** One batch, or undefined. `lock` takes its row lock for the rest of the transaction. */
export async function batchSelect(db: Queryable, id: string, lock = false): Promise<BatchRow | undefined> {
  const result = await db.query<BatchRow>(`SELECT ${columns} FROM batch b WHERE b.id = $1 ${lock ? "FOR UPDATE OF b" : ""}`, [id]);
  return result.rows.map(normalise)[0];
}

/** Batches newest first (by id, a UUIDv7), strictly after `afterId` in that order. */
export async function batchSelectPage(db: Queryable, filter: BatchFilter, limit: number, afterId: string | undefined): Promise<BatchRow[]> {
  const result = await db.query<BatchRow>(
    `SELECT ${columns} FROM batch b
     WHERE ($1::boolean IS NULL OR (b.finished_at IS NOT NULL) = $1::boolean)
       AND ($2::timestamptz IS NULL OR b.created_at >= $2::timestamptz)
       AND ($3::timestamptz IS NULL OR b.created_at < $3::timestamptz)
       AND ($4::uuid IS NULL OR b.id < $4::uuid)
       AND ($6::text IS NULL OR b.owner = $6::text)
       AND b.namespace = $7
     ORDER BY b.id DESC LIMIT $5`,
    [filter.finished ?? null, filter.createdAfter ?? null, filter.createdBefore ?? null, afterId ?? null, limit, filter.owner ?? null, filter.namespace],
  );
  return result.rows.map(normalise);
}

/** A node of a batch's job graph. */
export interface GraphNodeRow {
  id: string;
  ref: string | null;
  queue: string;
  kind: string;
  state: JobStateName;
  inBatch: boolean;
}

/** An edge of a batch's job graph. */
export interface GraphEdgeRow {
  parentId: string;
  childId: string;
  requiresSuccess: boolean;
}

/** A batch's jobs and, after them, the outside jobs they depend on; and every edge of its jobs. */
export async function batchGraph(db: Queryable, batchId: string): Promise<{ nodes: GraphNodeRow[]; edges: GraphEdgeRow[] }> {
  const edges = await db.query<GraphEdgeRow>(
    `SELECT d.parent_id AS "parentId", d.child_id AS "childId", d.requires_success AS "requiresSuccess"
     FROM job_dependency d JOIN job c ON c.id = d.child_id
     WHERE c.batch_id = $1 ORDER BY d.child_id, d.parent_id`,
    [batchId],
  );
  const nodes = await db.query<GraphNodeRow>(
    `SELECT id, ref, queue, kind, state, batch_id IS NOT DISTINCT FROM $1::uuid AS "inBatch" FROM job
     WHERE batch_id = $1 OR id = ANY($2::uuid[])
     ORDER BY (batch_id IS NOT DISTINCT FROM $1::uuid) DESC, id`,
    [batchId, edges.rows.map((edge) => edge.parentId)],
  );
  return { nodes: nodes.rows, edges: edges.rows };
}

/** The unfinished jobs of a batch, locked in id order (the order every bulk change locks in). */
export async function batchLockUnfinishedJobs(db: Queryable, batchId: string): Promise<{ id: string; state: JobStateName; cancelRequested: boolean }[]> {
  const result = await db.query<{ id: string; state: JobStateName; cancelRequested: boolean }>(
    `SELECT id, state, cancel_requested_at IS NOT NULL AS "cancelRequested" FROM job
     WHERE batch_id = $1 AND state IN ('scheduled', 'pending', 'blocked', 'paused', 'running')
     ORDER BY id FOR NO KEY UPDATE`,
    [batchId],
  );
  return result.rows;
}

function normalise(row: BatchRow): BatchRow {
  return { ...row, createdAt: new Date(row.createdAt), finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt) };
}
