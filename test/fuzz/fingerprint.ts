import type pg from "pg";

/** Every table a request could write to. */
const tables = ["job", "job_phase", "job_event", "queue", "webhook_subscription", "webhook_delivery"];

/**
 * A cheap fingerprint of everything a request could change: per table, the row count and
 * the sum of the rows' `xmin` (the id of the transaction that wrote each row version), so
 * an insert, a delete and an update of any row all change it.
 */
export async function databaseFingerprint(pool: pg.Pool): Promise<string> {
  const columns = tables.map((table) => `(SELECT count(*) || '/' || coalesce(sum(xmin::text::bigint), 0) FROM ${table}) AS ${table}`);
  const { rows } = await pool.query<Record<string, string>>(`SELECT ${columns.join(", ")}`);
  return tables.map((table) => `${table}=${rows[0]![table]}`).join(" ");
}
