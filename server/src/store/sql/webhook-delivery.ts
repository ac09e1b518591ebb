import type { Queryable } from "../transaction.js";

/** A delivery claimed for an attempt. */
export interface DueDelivery {
  id: string;
  eventId: string;
  /** Null for a delivery of a batch's own event. */
  jobId: string | null;
  queue: string | null;
  url: string;
  /** Null when the named secret of a job's target did not exist as the event was written. */
  secret: string | null;
  /** The secret's name, for a job's own target; null for a subscription. */
  secretName: string | null;
  body: unknown;
  attempts: number;
}

/**
 * Claims up to `limit` due deliveries for an attempt: counts the attempt and moves their
 * next attempt to `leaseMs` from now, so that a delivery cut off by a crash or a shutdown
 * is attempted again then, by any replica. Rows others are claiming are skipped.
 */
export async function webhookDeliveryClaimDue(db: Queryable, limit: number, leaseMs: number): Promise<DueDelivery[]> {
  const result = await db.query<DueDelivery>({
    name: "jobwire_webhook_claim_due",
    text: `UPDATE webhook_delivery d SET attempts = d.attempts + 1,
                                         next_attempt_at = clock_timestamp() + $2::float8 * interval '1 millisecond'
           FROM (SELECT id FROM webhook_delivery WHERE state = 'pending' AND next_attempt_at <= clock_timestamp()
                 ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
           WHERE d.id = due.id
           RETURNING d.id::text, d.event_id::text AS "eventId", d.job_id AS "jobId", d.queue, d.url, d.secret, d.secret_name AS "secretName", d.body, d.attempts`,
    values: [limit, leaseMs],
  });
  return result.rows;
}

/**
 * Records a successful attempt and writes the job's `webhook_delivered` event, in one
 * statement. Guarded by state: a delivery already finished changes nothing.
 */
export async function webhookDeliverySucceeded(db: Queryable, id: string, status: number): Promise<void> {
  await db.query({
    name: "jobwire_webhook_succeeded",
    text: `WITH done AS (
             UPDATE webhook_delivery SET state = 'delivered', finished_at = clock_timestamp(), last_error = NULL
             WHERE id = $1 AND state = 'pending'
             RETURNING id, event_id, job_id, queue, batch_id, url, attempts
           )
           INSERT INTO job_event (job_id, queue, batch_id, type, attempt, data)
           SELECT job_id, queue, batch_id, 'webhook_delivered', 0,
                  jsonb_build_object('delivery', id::text, 'event', event_id::text, 'url', url, 'status', $2::int, 'attempts', attempts)
           FROM done`,
    values: [id, status],
  });
}

/**
 * Records a failed attempt: the delivery is retried after `retryInMs`, or, with `retryInMs`
 * null (attempts used up), marked failed with the job's `webhook_failed` event.
 */
export async function webhookDeliveryFailed(db: Queryable, id: string, error: string, retryInMs: number | null): Promise<void> {
  await db.query({
    name: "jobwire_webhook_failed",
    text: `WITH done AS (
             UPDATE webhook_delivery SET last_error = $2,
               state = CASE WHEN $3::float8 IS NULL THEN 'failed' ELSE 'pending' END,
               finished_at = CASE WHEN $3::float8 IS NULL THEN clock_timestamp() END,
               next_attempt_at = CASE WHEN $3::float8 IS NULL THEN next_attempt_at
                                      ELSE clock_timestamp() + $3::float8 * interval '1 millisecond' END
             WHERE id = $1 AND state = 'pending'
             RETURNING id, event_id, job_id, queue, batch_id, url, attempts, state
           )
           INSERT INTO job_event (job_id, queue, batch_id, type, attempt, data)
           SELECT job_id, queue, batch_id, 'webhook_failed', 0,
                  jsonb_build_object('delivery', id::text, 'event', event_id::text, 'url', url, 'error', $2::text, 'attempts', attempts)
           FROM done WHERE state = 'failed'`,
    values: [id, error, retryInMs],
  });
}

/**
 * Milliseconds until the next pending delivery is due (negative if overdue; null if none),
 * and whether any subscription or job webhook target exists (so new events may bring
 * deliveries).
 */
export async function webhookOutboxState(db: Queryable): Promise<{ nextDueMs: number | null; targets: boolean }> {
  const result = await db.query<{ ms: number | null; targets: boolean }>(
    `SELECT (SELECT extract(epoch FROM min(next_attempt_at) - clock_timestamp()) * 1000
             FROM webhook_delivery WHERE state = 'pending') AS ms,
            -- ORDER BY id LIMIT 1 walks the partial indexes; EXISTS may scan the tables (see 0015).
            EXISTS (SELECT 1 FROM webhook_subscription)
              OR (SELECT id FROM job WHERE webhooks IS NOT NULL ORDER BY id LIMIT 1) IS NOT NULL
              OR (SELECT id FROM batch WHERE webhooks IS NOT NULL ORDER BY id LIMIT 1) IS NOT NULL AS targets`,
  );
  const row = result.rows[0];
  return { nextDueMs: row?.ms === null || row?.ms === undefined ? null : Number(row.ms), targets: row?.targets ?? false };
}
