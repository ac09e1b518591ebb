import type { Queryable } from "../transaction.js";

/** A stored webhook secret, without the secret itself. */
export interface WebhookSecretRow {
  name: string;
  createdAt: Date;
  updatedAt: Date;
}

const columns = `name, created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Stores a named secret, replacing the one of that name if any. */
export async function webhookSecretUpsert(db: Queryable, name: string, secret: string): Promise<WebhookSecretRow> {
  const result = await db.query<WebhookSecretRow>(
    `INSERT INTO webhook_secret (name, secret) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET secret = excluded.secret, updated_at = clock_timestamp()
     RETURNING ${columns}`,
    [name, secret],
  );
  return normalise(result.rows[0]!);
}

/** Deletes a named secret; returns whether it existed. */
export async function webhookSecretDelete(db: Queryable, name: string): Promise<boolean> {
  return ((await db.query("DELETE FROM webhook_secret WHERE name = $1", [name])).rowCount ?? 0) > 0;
}

/** Every stored secret's name and times, by name. */
export async function webhookSecretList(db: Queryable): Promise<WebhookSecretRow[]> {
  const result = await db.query<WebhookSecretRow>(`SELECT ${columns} FROM webhook_secret ORDER BY name`);
  return result.rows.map(normalise);
}

/** Which of `names` are not stored. */
export async function webhookSecretsMissing(db: Queryable, names: readonly string[]): Promise<string[]> {
  const result = await db.query<{ name: string }>(
    "SELECT n AS name FROM unnest($1::text[]) AS n WHERE NOT EXISTS (SELECT 1 FROM webhook_secret s WHERE s.name = n)",
    [names],
  );
  return result.rows.map((row) => row.name);
}

function normalise(row: WebhookSecretRow): WebhookSecretRow {
  return { ...row, createdAt: new Date(row.createdAt), updatedAt: new Date(row.updatedAt) };
}
