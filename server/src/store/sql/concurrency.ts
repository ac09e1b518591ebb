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

const columns = `key, per_key AS "perKey", max_running AS "maxRunning", max_weight AS "maxWeight", rate_count AS "rateCount",
  rate_interval_ms AS "rateIntervalMs", paused_until AS "pausedUntil", updated_at AS "updatedAt"`;

/**
 * The jobs a limit governs (of the namespace in parameter `namespace`, with a key whose
 * most specific limit there is the one in parameter `key`), as a condition on job `j`. An
 * exact key needs no check beyond equality: it is always the most specific.
 */
function governedBy(key: string, namespace: string): string {
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
     RETURNING ${columns}`,
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
     RETURNING ${columns}`,
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
  const result = await db.query<ConcurrencyLimitRow>(`SELECT ${columns} FROM concurrency_limit WHERE namespace = $1 ORDER BY key`, [namespace]);
  return result.rows.map(normalise);
}

/** A unit of admission: a limit, and for a per-key limit, one of its keys. */
export interface AdmissionUnit {
  /** The namespace of the limit and of the jobs it admits. */
  namespace: string;
  limitKey: string;
  /** The one concurrency key to admit for; null for a limit that bounds its keys together. */
  onlyKey: string | null;
}

/**
 * What waits for admission: each limit governing waiting jobs, and for a per-key limit
 * each of its keys with waiting jobs, ordered by namespace, limit and key (the order in
 * which a pass locks their limits). Walks the distinct keys of waiting jobs through their
 * index (one probe per key, whatever the backlog).
 */
export async function admissionUnitsWaiting(db: Queryable): Promise<AdmissionUnit[]> {
  const result = await db.query<{ namespace: string; limitKey: string | null; perKey: boolean | null; key: string }>({
    name: "jobwire_limits_with_waiting_jobs",
    text: `WITH RECURSIVE waiting(ns, k) AS (
             (SELECT namespace, concurrency_key FROM job WHERE state = 'pending' AND NOT admitted
              ORDER BY namespace, concurrency_key LIMIT 1)
             UNION ALL
             SELECT next.namespace, next.concurrency_key
             FROM waiting w
             CROSS JOIN LATERAL (
               SELECT namespace, concurrency_key FROM job
               WHERE state = 'pending' AND NOT admitted AND (namespace, concurrency_key) > (w.ns, w.k)
               ORDER BY namespace, concurrency_key LIMIT 1
             ) next
           )
           SELECT w.ns AS namespace, g.key AS "limitKey", l.per_key AS "perKey", w.k AS key
           FROM waiting w
           CROSS JOIN LATERAL (SELECT jobwire_governing_limit(w.ns, w.k) AS key) g
           LEFT JOIN concurrency_limit l ON l.namespace = w.ns AND l.key = g.key
           WHERE w.k IS NOT NULL
           -- Lock order: a pass locks the limits of these units one after the other.
           ORDER BY w.ns, g.key, w.k`,
  });
  const units = new Map<string, AdmissionUnit>();
  for (const row of result.rows) {
    if (row.limitKey === null) continue;
    const onlyKey = row.perKey ? row.key : null;
    units.set(`${row.namespace}\u0000${row.limitKey}\u0000${onlyKey ?? ""}`, { namespace: row.namespace, limitKey: row.limitKey, onlyKey });
  }
  return [...units.values()];
}

/** What one admission step did. */
export interface AdmissionOutcome {
  /** Queues of the jobs admitted. */
  queues: QueueAddress[];
  /** When this limit may admit more by itself (end of a pause or of a rate window); null if not. */
  nextAt: Date | null;
}

/**
 * The jobs of an admission unit, as a condition on job `j` with the limit's key in `$1`, the
 * unit's one key in `$3` and the namespace in `$4`. Written out per shape of unit rather
 * than as one condition with CASE and IS NULL branches, so that a generic plan (see
 * `orm.ts`) still finds the key in the admission and in-use indexes. Every shape takes the
 * same four parameters (`$3 IS NULL` where the unit has no one key).
 */
function unitCondition(unit: AdmissionUnit): { shape: "exact" | "key" | "prefix"; ofUnit: string } {
  if (!unit.limitKey.endsWith("*")) return { shape: "exact", ofUnit: "j.namespace = $4::text AND j.concurrency_key = $1::text AND $3::text IS NULL" };
  // One key of a per-key prefix limit: still governed by it (a more specific limit may have
  // been made since the units were listed).
  if (unit.onlyKey !== null) {
    return { shape: "key", ofUnit: "j.namespace = $4::text AND j.concurrency_key = $3::text AND jobwire_governing_limit($4::text, $3::text) = $1::text" };
  }
  return { shape: "prefix", ofUnit: `${governedBy("$1", "$4")} AND $3::text IS NULL` };
}

/**
 * Admits the jobs waiting on one limit, in the caller's transaction: locks the limit's row
 * (so replicas admit for it one at a time), counts what it has in use (admitted pending and
 * running jobs, their weight, admissions in the rate window), and admits waiting jobs in
 * priority, run_at, id order while all bounds hold. A job too heavy for the weight left
 * waits, and so do the jobs behind it: no job is overtaken for ever.
 */
export async function admitForLimit(tx: Queryable, unit: AdmissionUnit, candidatesMax = 1000): Promise<AdmissionOutcome> {
  const key = unit.limitKey;
  const { shape, ofUnit } = unitCondition(unit);
  // Named statements, one per shape of unit: a pass runs them once per limit, as often as
  // every few milliseconds.
  const { rows: limits } = await tx.query<ConcurrencyLimitRow & { paused: boolean }>({
    name: "jobwire_admission_lock_limit",
    text: `SELECT ${columns}, coalesce(paused_until > clock_timestamp(), false) AS paused FROM concurrency_limit WHERE namespace = $2 AND key = $1 FOR UPDATE`,
    values: [key, unit.namespace],
  });
  const limit = limits[0];
  if (!limit) return { queues: [], nextAt: null };
  if (limit.paused) return { queues: [], nextAt: new Date(limit.pausedUntil!) };
  const { rows: usage } = await tx.query<{ running: number; weight: number; recent: number; oldestRecent: Date | null }>({
    name: `jobwire_admission_usage_${shape}`,
    text: `SELECT in_use.running, in_use.weight, window_.recent, window_."oldestRecent"
     FROM (SELECT count(*)::int AS running, coalesce(sum(j.weight), 0)::int AS weight FROM job j
           WHERE j.concurrency_key IS NOT NULL AND (j.state = 'running' OR (j.state = 'pending' AND j.admitted)) AND ${ofUnit}) in_use,
          -- Admissions in the rate window (none looked for without a rate limit).
          (SELECT count(*)::int AS recent, min(j.admitted_at) AS "oldestRecent" FROM job j
           WHERE $2::int IS NOT NULL AND j.admitted_under_rate AND j.concurrency_key IS NOT NULL
             AND j.admitted_at > clock_timestamp() - $2::int * interval '1 millisecond' AND ${ofUnit}) window_`,
    values: [key, limit.rateIntervalMs, unit.onlyKey, unit.namespace],
  });
  const used = usage[0]!;
  let slots = Math.min(
    limit.maxRunning === null ? candidatesMax : limit.maxRunning - used.running,
    limit.rateCount === null ? candidatesMax : limit.rateCount - used.recent,
    candidatesMax,
  );
  const rateFull = limit.rateCount !== null && used.recent >= limit.rateCount;
  const nextAt = rateFull && used.oldestRecent ? new Date(new Date(used.oldestRecent).getTime() + limit.rateIntervalMs!) : null;
  if (slots <= 0) return { queues: [], nextAt };
  const { rows: waiting } = await tx.query<{ id: string; weight: number }>({
    name: `jobwire_admission_waiting_${shape}`,
    text: `SELECT j.id, j.weight FROM job j
     WHERE j.state = 'pending' AND NOT j.admitted AND j.concurrency_key IS NOT NULL AND ${ofUnit}
     ORDER BY j.priority DESC, j.run_at, j.id LIMIT $2`,
    values: [key, slots, unit.onlyKey, unit.namespace],
  });
  let weightLeft = limit.maxWeight === null ? Number.POSITIVE_INFINITY : limit.maxWeight - used.weight;
  const admit: string[] = [];
  for (const job of waiting) {
    if (job.weight > weightLeft || slots <= 0) break;
    weightLeft -= job.weight;
    slots--;
    admit.push(job.id);
  }
  if (admit.length === 0) return { queues: [], nextAt };
  const { rows } = await tx.query<{ namespace: string; queue: string }>({
    name: "jobwire_admission_admit",
    text: `UPDATE job SET admitted = true, admitted_at = clock_timestamp(), admitted_under_rate = $2
           WHERE id = ANY($1::uuid[]) AND state = 'pending' AND NOT admitted RETURNING namespace, queue`,
    values: [admit, limit.rateCount !== null],
  });
  const admittedAll = limit.rateCount !== null && used.recent + admit.length >= limit.rateCount;
  return {
    queues: [...queueAddressesOf(rows)],
    nextAt: nextAt ?? (admittedAll ? new Date(Date.now() + limit.rateIntervalMs!) : null),
  };
}

function normalise(row: ConcurrencyLimitRow): ConcurrencyLimitRow {
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
