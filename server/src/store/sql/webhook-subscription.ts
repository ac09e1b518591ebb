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
  subscription: { id: string; namespace: string; queue: string; url: string; eventTypes: string[]; secret: string },
): Promise<SubscriptionRow> {
  const result = await db.query<SubscriptionRow>(
    `INSERT INTO webhook_subscription (id, queue, url, event_types, secret, namespace) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${columns}`,
    [subscription.id, subscription.queue, subscription.url, subscription.eventTypes, subscription.secret, subscription.namespace],
  );
  return normalise(result.rows[0]!);
}

/** Deletes a subscription of `namespace`; returns whether it existed there. */
export async function webhookSubscriptionDelete(db: Queryable, namespace: string, id: string): Promise<boolean> {
  return ((await db.query("DELETE FROM webhook_subscription WHERE id = $1 AND namespace = $2", [id, namespace])).rowCount ?? 0) > 0;
}

/** The subscriptions of queue `queue` of `namespace`, oldest first. */
export async function webhookSubscriptionList(db: Queryable, namespace: string, queue: string): Promise<SubscriptionRow[]> {
  const result = await db.query<SubscriptionRow>(
    `SELECT ${columns} FROM webhook_subscription WHERE namespace = $2 AND queue = $1 ORDER BY created_at, id`,
    [queue, namespace],
  );
  return result.rows.map(normalise);
}

function normalise(row: SubscriptionRow): SubscriptionRow {
  return { ...row, createdAt: new Date(row.createdAt) };
}
