import type { Queryable } from "../transaction.js";

/** An idempotency key of a queue, and the job that holds it or is to hold it. */
export interface KeyHold {
  namespace: string;
  queue: string;
  /** The principal enqueueing: keys are scoped to it. */
  owner: string;
  key: string;
  jobId: string;
}

/**
 * Claims keys for new jobs: inserts each (queue, key) → job row unless the key is held
 * already, and returns the claims that were inserted. A key inserted by a transaction still
 * open makes this wait for it, so of concurrent claims of one key exactly one succeeds, on
 * any replica. Claims are inserted in the order given: callers sort them, so that two
 * transactions claiming overlapping keys wait for each other in one direction only.
 */
export async function idempotencyKeyInsertMany(db: Queryable, holds: readonly KeyHold[]): Promise<KeyHold[]> {
  const result = await db.query<KeyHold>({
    name: "jobwire_idempotency_key_insert",
    text: `INSERT INTO idempotency_key (queue, owner, key, job_id, namespace)
           SELECT * FROM unnest($1::text[], $4::text[], $2::text[], $3::uuid[], $5::text[])
           ON CONFLICT (namespace, queue, owner, key) DO NOTHING
           RETURNING namespace, queue, owner, key, job_id AS "jobId"`,
    values: [holds.map((h) => h.queue), holds.map((h) => h.key), holds.map((h) => h.jobId), holds.map((h) => h.owner), holds.map((h) => h.namespace)],
  });
  return result.rows;
}

/**
 * Locks the rows of held keys until the transaction ends, in key order, and returns them
 * with their current holders. Keys with no row (never claimed, or freed by retention since)
 * are left out.
 */
export async function idempotencyKeyLockMany(db: Queryable, keys: readonly Omit<KeyHold, "jobId">[]): Promise<KeyHold[]> {
  const result = await db.query<KeyHold>({
    name: "jobwire_idempotency_key_lock",
    text: `SELECT k.namespace, k.queue, k.owner, k.key, k.job_id AS "jobId"
           FROM idempotency_key k
           JOIN unnest($1::text[], $3::text[], $2::text[], $4::text[]) AS wanted(queue, owner, key, namespace)
             ON k.namespace = wanted.namespace AND k.queue = wanted.queue AND k.owner = wanted.owner AND k.key = wanted.key
           ORDER BY k.namespace, k.queue, k.owner, k.key
           FOR UPDATE OF k`,
    values: [keys.map((k) => k.queue), keys.map((k) => k.key), keys.map((k) => k.owner), keys.map((k) => k.namespace)],
  });
  return result.rows;
}

/**
 * Which of these holder jobs still hold their key: a job holds it while it exists and is
 * unfinished, and for its queue's idempotency window after it finished (`defaultWindowMs`
 * when the queue sets none), by the database clock. Run after {@link idempotencyKeyLockMany}
 * in the same transaction, so the holders it sees are the committed ones.
 */
export async function idempotencyKeyLiveHolders(db: Queryable, jobIds: readonly string[], defaultWindowMs: number): Promise<Set<string>> {
  const result = await db.query<{ id: string }>({
    name: "jobwire_idempotency_key_live_holders",
    text: `SELECT j.id FROM job j LEFT JOIN queue q ON q.namespace = j.namespace AND q.name = j.queue
           WHERE j.id = ANY($1::uuid[])
             AND (j.finished_at IS NULL
                  OR j.finished_at + coalesce(q.idempotency_window_ms, $2::bigint) * interval '1 millisecond' > clock_timestamp())`,
    values: [jobIds, defaultWindowMs],
  });
  return new Set(result.rows.map((row) => row.id));
}

/** Hands locked keys over to new holders (their previous holders' windows have passed). */
export async function idempotencyKeyMoveMany(db: Queryable, holds: readonly KeyHold[]): Promise<void> {
  await db.query({
    name: "jobwire_idempotency_key_move",
    text: `UPDATE idempotency_key k SET job_id = moved.job_id
           FROM unnest($1::text[], $4::text[], $2::text[], $3::uuid[], $5::text[]) AS moved(queue, owner, key, job_id, namespace)
           WHERE k.namespace = moved.namespace AND k.queue = moved.queue AND k.owner = moved.owner AND k.key = moved.key`,
    values: [holds.map((h) => h.queue), holds.map((h) => h.key), holds.map((h) => h.jobId), holds.map((h) => h.owner), holds.map((h) => h.namespace)],
  });
}
