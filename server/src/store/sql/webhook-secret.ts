import type { Queryable } from "../transaction.js";

/** A stored webhook secret, without the secret itself. */
export interface WebhookSecretRow {
  name: string;
  createdAt: Date;
  updatedAt: Date;
}

const columns = `name, created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Stores a named secret in `namespace`, replacing the one of that name there if any. */
export async function webhookSecretUpsert(db: Queryable, namespace: string, name: string, secret: string): Promise<WebhookSecretRow> {
  const result = await db.query<WebhookSecretRow>(
    `INSERT INTO webhook_secret (namespace, name, secret) VALUES ($3, $1, $2)
     ON CONFLICT (namespace, name) DO UPDATE SET secret = excluded.secret, updated_at = clock_timestamp()
     RETURNING ${columns}`,
    [name, secret, namespace],
  );
  return normalise(result.rows[0]!);
}

/** Deletes a named secret of `namespace`; returns whether it existed there. */
export async function webhookSecretDelete(db: Queryable, namespace: string, name: string): Promise<boolean> {
  return ((await db.query("DELETE FROM webhook_secret WHERE namespace = $2 AND name = $1", [name, namespace])).rowCount ?? 0) > 0;
}

/** Every secret stored in `namespace`: names and times, by name. */
export async function webhookSecretList(db: Queryable, namespace: string): Promise<WebhookSecretRow[]> {
  const result = await db.query<WebhookSecretRow>(`SELECT ${columns} FROM webhook_secret WHERE namespace = $1 ORDER BY name`, [namespace]);
  return result.rows.map(normalise);
}

/** Which of `names` are not stored in `namespace`. */
export async function webhookSecretsMissing(db: Queryable, namespace: string, names: readonly string[]): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    "SELECT n AS name FROM unnest($1::text[]) AS n WHERE NOT EXISTS (SELECT 1 FROM webhook_secret s WHERE s.namespace = $2 AND s.name = n)",
    [names, namespace],
  );
  return result.rows.map((row) => row.name);
}

function normalise(row: WebhookSecretRow): WebhookSecretRow {
  return { ...row, createdAt: new Date(row.createdAt), updatedAt: new Date(row.updatedAt) };
}
