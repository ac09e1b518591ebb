import type { Queryable } from "../transaction.js";

/**
 * Deletes up to `limit` finished jobs (succeeded, failed, cancelled) that finished longer
 * ago than their queue's retention (or `defaultRetentionMs`), with their phases, writing a
 * `deleted` event for each and freeing the idempotency keys they hold, in the same
 * statement. Rows other replicas are deleting are skipped. Running, scheduled, pending,
 * blocked and paused jobs are never touched. Returns how many were deleted.
 */
export async function jobDeleteExpired(db: Queryable, defaultRetentionMs: number, limit: number): Promise<number> {
  const result = await db.query({
    name: "jobwire_job_delete_expired",
    text: `WITH doomed AS (
             SELECT j.id FROM job j LEFT JOIN queue q ON q.namespace = j.namespace AND q.name = j.queue
             WHERE j.state IN ('succeeded', 'failed', 'cancelled')
               AND j.finished_at < clock_timestamp() - coalesce(q.retention_ms, $1::bigint) * interval '1 millisecond'
               -- A bound on the index walk: nothing finished since the shortest retention in
               -- force can be due. Without it, a pass with nothing to delete walked every
               -- finished job (2.9 s with 1,350,000 of them), once a minute. now(), not
               -- clock_timestamp(): only a stable expression can bound an index scan.
               AND j.finished_at < now() - least($1::bigint, (SELECT min(retention_ms) FROM queue)) * interval '1 millisecond'
             ORDER BY j.finished_at
             LIMIT $2
             FOR UPDATE OF j SKIP LOCKED
           ),
           deleted AS (
             DELETE FROM job j USING doomed WHERE j.id = doomed.id
             RETURNING j.id, j.namespace, j.owner, j.queue, j.attempt, j.idempotency_key
           ),
           -- A deleted job frees the idempotency key it still holds.
           freed_keys AS (
             DELETE FROM idempotency_key k USING deleted d
             WHERE k.namespace = d.namespace AND k.queue = d.queue AND k.key = d.idempotency_key AND k.job_id = d.id
           )
           -- Owner and namespace from the deleted row: the event trigger could not find its job.
           INSERT INTO job_event (job_id, queue, type, attempt, data, owner, namespace)
           SELECT id, queue, 'deleted', attempt, '{}'::jsonb, owner, namespace FROM deleted`,
    values: [defaultRetentionMs, limit],
  });
  return result.rowCount ?? 0;
}

/**
 * Deletes up to `limit` of the oldest events written longer ago than `retentionMs`. Looks
 * only at the `limit` oldest rows (by id), so a log with nothing to prune costs one short
 * index walk. Returns how many were deleted.
 */
export async function eventDeleteExpired(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  const result = await db.query({
    name: "jobwire_event_delete_expired",
    text: `DELETE FROM job_event WHERE id IN (
             SELECT id FROM (SELECT id, at FROM job_event ORDER BY id LIMIT $2) AS oldest
             WHERE at < clock_timestamp() - $1::bigint * interval '1 millisecond'
           )`,
    values: [retentionMs, limit],
  });
  return result.rowCount ?? 0;
}

/**
 * Deletes up to `limit` of the oldest finished webhook deliveries (delivered or failed)
 * that finished longer ago than `retentionMs`: the outbox keeps its history as long as the
 * event log keeps the events it records. Pending deliveries are never touched. Returns how
 * many were deleted.
 */
export async function webhookDeliveryDeleteExpired(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  const result = await db.query({
    name: "jobwire_webhook_delivery_delete_expired",
    text: `DELETE FROM webhook_delivery WHERE id IN (
             SELECT id FROM (SELECT id, state, finished_at FROM webhook_delivery ORDER BY id LIMIT $2) AS oldest
             WHERE state <> 'pending' AND finished_at < clock_timestamp() - $1::bigint * interval '1 millisecond'
           )`,
    values: [retentionMs, limit],
  });
  return result.rowCount ?? 0;
}

/**
 * Deletes up to `limit` finished batches that finished longer ago than `retentionMs` and
 * whose jobs retention has all deleted. Returns how many were deleted.
 */
export async function batchDeleteExpired(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  const result = await db.query({
    name: "jobwire_batch_delete_expired",
    text: `DELETE FROM batch WHERE id IN (
             SELECT b.id FROM batch b
             WHERE b.finished_at < clock_timestamp() - $1::bigint * interval '1 millisecond'
               AND NOT EXISTS (SELECT 1 FROM job j WHERE j.batch_id = b.id)
             ORDER BY b.finished_at LIMIT $2
           )`,
    values: [retentionMs, limit],
  });
  return result.rowCount ?? 0;
}
