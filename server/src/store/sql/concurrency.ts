import { queueAddressesOf, type QueueAddress } from "../../dispatch/queue-address.js";
import type { Queryable } from "../transaction.js";

/** A concurrency limit as stored. Null fields do not limit. */
export interface ConcurrencyLimitRow {
  key: string;
  /** Whether the bounds hold for each covered key on its own. */
  perKey: boolean;
  maxRunning: number | null;
  maxWeight: number | null;
  rateCount: number | null;
  rateIntervalMs: number | null;
  pausedUntil: Date | null;
  updatedAt: Date;
}

/** The columns of a limit, as {@link ConcurrencyLimitRow} names them. */
export const limitColumns = `key, per_key AS "perKey", max_running AS "maxRunning", max_weight AS "maxWeight", rate_count AS "rateCount",
  rate_interval_ms AS "rateIntervalMs", paused_until AS "pausedUntil", updated_at AS "updatedAt"`;

/**
 * The jobs a limit governs (of the namespace in parameter `namespace`, with a key whose
 * most specific limit there is the one in parameter `key`), as a condition on job `j`. An
 * exact key needs no check beyond equality: it is always the most specific.
 */
export function governedBy(key: string, namespace: string): string {
  return `(j.namespace = ${namespace}::text AND CASE WHEN right(${key}::text, 1) = '*'
            THEN starts_with(j.concurrency_key, rtrim(${key}::text, '*')) AND jobwire_governing_limit(${namespace}::text, j.concurrency_key) = ${key}::text
            ELSE j.concurrency_key = ${key}::text END)`;
}

/**
 * Takes back the admission of pending jobs that `key`'s limit governs and that are not yet
 * leased, so that a new or tightened limit (or a pause) applies to them at once; the
 * admission loop admits them again as the limit allows.
 */
async function withdrawAdmissions(tx: Queryable, namespace: string, key: string): Promise<void> {
  await tx.query(
    `UPDATE job j SET admitted = false WHERE j.state = 'pending' AND j.admitted AND j.concurrency_key IS NOT NULL AND ${governedBy("$1", "$2")}`,
    [key, namespace],
  );
}

/**
 * Creates or replaces a limit of `namespace` (keeping its pause) and withdraws the
 * admissions it governs.
 */
export async function concurrencyLimitUpsert(
  tx: Queryable,
  namespace: string,
  limit: Omit<ConcurrencyLimitRow, "pausedUntil" | "updatedAt">,
): Promise<ConcurrencyLimitRow> {
  const result = await tx.query<ConcurrencyLimitRow>(
    `INSERT INTO concurrency_limit (key, max_running, max_weight, rate_count, rate_interval_ms, per_key, namespace) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (namespace, key) DO UPDATE SET max_running = excluded.max_running, max_weight = excluded.max_weight,
       rate_count = excluded.rate_count, rate_interval_ms = excluded.rate_interval_ms, per_key = excluded.per_key,
       updated_at = clock_timestamp()
     RETURNING ${limitColumns}`,
    [limit.key, limit.maxRunning, limit.maxWeight, limit.rateCount, limit.rateIntervalMs, limit.perKey, namespace],
  );
  await withdrawAdmissions(tx, namespace, limit.key);
  return normalise(result.rows[0]!);
}

/** Pauses a key or prefix of `namespace` until `until`, creating an unbounded limit for it if needed. */
export async function concurrencyKeyPause(tx: Queryable, namespace: string, key: string, until: Date): Promise<ConcurrencyLimitRow> {
  const result = await tx.query<ConcurrencyLimitRow>(
    `INSERT INTO concurrency_limit (key, paused_until, namespace) VALUES ($1, $2, $3)
     ON CONFLICT (namespace, key) DO UPDATE SET paused_until = excluded.paused_until, updated_at = clock_timestamp()
     RETURNING ${limitColumns}`,
    [key, until, namespace],
  );
  await withdrawAdmissions(tx, namespace, key);
  return normalise(result.rows[0]!);
}

/**
 * Deletes a limit of `namespace`; the jobs it governed that no other limit covers are
 * admitted at once. Returns the queues of those jobs, or undefined if there was no such limit.
 */
export async function concurrencyLimitDelete(tx: Queryable, namespace: string, key: string): Promise<QueueAddress[] | undefined> {
  // Which jobs it governed is decided while it still exists.
  const governed = await tx.query<{ id: string }>(
    `SELECT j.id FROM job j WHERE j.state = 'pending' AND NOT j.admitted AND j.concurrency_key IS NOT NULL AND ${governedBy("$1", "$2")}`,
    [key, namespace],
  );
  const deleted = await tx.query("DELETE FROM concurrency_limit WHERE namespace = $2 AND key = $1", [key, namespace]);
  if ((deleted.rowCount ?? 0) === 0) return undefined;
  const admitted = await tx.query<{ namespace: string; queue: string }>(
    `UPDATE job SET admitted = true WHERE id = ANY($1::uuid[]) AND state = 'pending' AND NOT admitted
       AND jobwire_governing_limit(namespace, concurrency_key) IS NULL
     RETURNING namespace, queue`,
    [governed.rows.map((row) => row.id)],
  );
  return [...queueAddressesOf(admitted.rows)];
}

/** Every limit of `namespace`, by key. */
export async function concurrencyLimitList(db: Queryable, namespace: string): Promise<ConcurrencyLimitRow[]> {
  const result = await db.query<ConcurrencyLimitRow>(`SELECT ${limitColumns} FROM concurrency_limit WHERE namespace = $1 ORDER BY key`, [namespace]);
  return result.rows.map(normalise);
}

/** A limit row as the driver returned it, with its dates as dates. */
export function normalise(row: ConcurrencyLimitRow): ConcurrencyLimitRow {
  return {
    key: row.key,
    perKey: row.perKey,
    maxRunning: row.maxRunning,
    maxWeight: row.maxWeight,
    rateCount: row.rateCount,
    rateIntervalMs: row.rateIntervalMs,
    pausedUntil: row.pausedUntil === null ? null : new Date(row.pausedUntil),
    updatedAt: new Date(row.updatedAt),
  };
}

/** Whether any concurrency limit exists (without one, nothing ever waits for admission). */
export async function concurrencyLimitsExist(db: Queryable): Promise<boolean> {
  const result = await db.query<{ exist: boolean }>({
    name: "jobwire_concurrency_limits_exist",
    text: "SELECT EXISTS (SELECT 1 FROM concurrency_limit) AS exist",
  });
  return result.rows[0]?.exist ?? true;
}
