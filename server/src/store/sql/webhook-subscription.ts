import type { Queryable } from "../transaction.js";

/** A webhook subscription as stored (the secret is never read back out). */
export interface SubscriptionRow {
  id: string;
  queue: string;
  url: string;
  eventTypes: string[];
  createdAt: Date;
}

const columns = `id, queue, url, event_types AS "eventTypes", created_at AS "createdAt"`;

/** Creates a subscription. */
export async function webhookSubscriptionInsert(
  db: Queryable,
  subscription: { id: string; queue: string; url: string; eventTypes: string[]; secret: string },
): Promise<SubscriptionRow> {
  const result = await db.query<SubscriptionRow>(
    `INSERT INTO webhook_subscription (id, queue, url, event_types, secret) VALUES ($1, $2, $3, $4, $5) RETURNING ${columns}`,
    [subscription.id, subscription.queue, subscription.url, subscription.eventTypes, subscription.secret],
  );
  return normalise(result.rows[0]!);
}

/** Deletes a subscription; returns whether it existed. */
export async function webhookSubscriptionDelete(db: Queryable, id: string): Promise<boolean> {
  return ((await db.query("DELETE FROM webhook_subscription WHERE id = $1", [id])).rowCount ?? 0) > 0;
}

/** A queue's subscriptions, oldest first. */
export async function webhookSubscriptionList(db: Queryable, queue: string): Promise<SubscriptionRow[]> {
  const result = await db.query<SubscriptionRow>(`SELECT ${columns} FROM webhook_subscription WHERE queue = $1 ORDER BY created_at, id`, [queue]);
  return result.rows.map(normalise);
}

function normalise(row: SubscriptionRow): SubscriptionRow {
  return { ...row, createdAt: new Date(row.createdAt) };
}
