import type { Queryable } from "../transaction.js";
import { governedBy, limitColumns, normalise, type ConcurrencyLimitRow } from "./concurrency.js";

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

/** A waiting job that its limit may admit now, with what placing it on a worker needs. */
export interface AdmissibleJob {
  id: string;
  namespace: string;
  queue: string;
  kind: string;
  priority: number;
  runAt: Date;
  /** Its queue's priority (0 for a queue without settings). */
  queuePriority: number;
  /** Whether its queue is paused (it is admitted, but no one may lease it yet). */
  queuePaused: boolean;
}

/** What one unit's limit may admit now. */
export interface AdmissionChoice {
  /** The jobs it may admit, in its admission order: priority, run_at, id. */
  jobs: AdmissibleJob[];
  /** Whether the limit has a rate: its admissions count in the rate window. */
  underRate: boolean;
  /** Admissions its rate window has left; null without a rate. */
  rateLeft: number | null;
  rateIntervalMs: number | null;
  /** When it may admit again by itself, if a pause or a full rate window holds it now. */
  heldUntil: Date | null;
}

/** What a limit has in use for a unit. */
interface Usage {
  running: number;
  weight: number;
  /** Admissions in its rate window, and the oldest of them. */
  recent: number;
  oldestRecent: Date | null;
}

type WaitingJob = AdmissibleJob & { weight: number };

/** The columns of a waiting job `w` with its queue `q`, as {@link WaitingJob} names them. */
const waitingColumns = `w.id, w.weight, w.namespace, w.queue, w.kind, w.priority, w.run_at AS "runAt",
  coalesce(q.priority, 0) AS "queuePriority", coalesce(q.paused_at IS NOT NULL, false) AS "queuePaused"`;

/** The one key a unit admits for: an exact limit's, or the unit's key of a per-key limit; null for a shared prefix. */
function singleKey(unit: AdmissionUnit): string | null {
  return unit.limitKey.endsWith("*") ? unit.onlyKey : unit.limitKey;
}

/**
 * Chooses the jobs each unit's limit may admit now, in the caller's transaction: locks the
 * units' limit rows in the units' order (so replicas admit for a limit one at a time,
 * until the caller commits), counts what each has in use (admitted pending and running
 * jobs, their weight, admissions in the rate window), and takes waiting jobs in priority,
 * run_at, id order while all bounds hold, at most `budget(unit)` of them. A job too heavy
 * for the weight left waits, and so do the jobs behind it: no job is overtaken for ever.
 * Units of one key (the common case) are counted and read together, one statement for
 * all; a limit that bounds a prefix's keys together is read on its own. The caller admits
 * (or leases) the chosen jobs before it commits. Returns one choice per unit, in order.
 */
export async function admissibleJobs(tx: Queryable, units: readonly AdmissionUnit[], budget: (unit: AdmissionUnit) => number): Promise<AdmissionChoice[]> {
  const limits = await lockLimits(tx, units);
  const choices: AdmissionChoice[] = units.map(() => ({ jobs: [], underRate: false, rateLeft: null, rateIntervalMs: null, heldUntil: null }));
  const open: number[] = [];
  units.forEach((_unit, i) => {
    const limit = limits[i];
    if (!limit) return;
    if (limit.paused) choices[i]!.heldUntil = limit.pausedUntil;
    else open.push(i);
  });
  const usage = await usageOf(tx, units, limits, open);
  const slots = new Map<number, number>();
  const weightLeft = new Map<number, number>();
  for (const i of open) {
    const limit = limits[i]!;
    const used = usage.get(i)!;
    const choice = choices[i]!;
    choice.underRate = limit.rateCount !== null;
    choice.rateLeft = limit.rateCount === null ? null : limit.rateCount - used.recent;
    choice.rateIntervalMs = limit.rateIntervalMs;
    if (choice.rateLeft !== null && choice.rateLeft <= 0 && used.oldestRecent) {
      choice.heldUntil = new Date(used.oldestRecent.getTime() + limit.rateIntervalMs!);
    }
    const max = budget(units[i]!);
    const free = Math.min(limit.maxRunning === null ? max : limit.maxRunning - used.running, choice.rateLeft ?? max, max);
    if (free > 0) slots.set(i, free);
    weightLeft.set(i, limit.maxWeight === null ? Number.POSITIVE_INFINITY : limit.maxWeight - used.weight);
  }
  const waiting = await waitingOf(tx, units, slots);
  for (const [i, jobs] of waiting) {
    let left = weightLeft.get(i)!;
    for (const { weight, ...job } of jobs) {
      if (weight > left) break;
      left -= weight;
      choices[i]!.jobs.push(job);
    }
  }
  return choices;
}

/** A unit's limit, locked; undefined if it no longer exists or no longer governs the unit's key. */
type LockedLimit = (ConcurrencyLimitRow & { paused: boolean }) | undefined;

/** Locks the limits of `units` in their order, in one statement. */
async function lockLimits(tx: Queryable, units: readonly AdmissionUnit[]): Promise<LockedLimit[]> {
  const { rows } = await tx.query<ConcurrencyLimitRow & { i: number; paused: boolean; governs: boolean }>({
    name: "jobwire_admission_lock_limits",
    text: `SELECT u.i::int AS i, ${limitColumns}, coalesce(l.paused_until > clock_timestamp(), false) AS paused,
             -- A more specific limit made since the units were listed governs that key now.
             (u.only_key IS NULL OR jobwire_governing_limit(u.ns, u.only_key) = u.limit_key) AS governs
           FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(ns, limit_key, only_key, i)
           JOIN concurrency_limit l ON l.namespace = u.ns AND l.key = u.limit_key
           ORDER BY l.namespace, l.key, u.i
           FOR UPDATE OF l`,
    values: [units.map((unit) => unit.namespace), units.map((unit) => unit.limitKey), units.map((unit) => unit.onlyKey)],
  });
  const limits: LockedLimit[] = units.map(() => undefined);
  for (const { i, paused, governs, ...row } of rows) if (governs) limits[i - 1] = { ...normalise(row), paused };
  return limits;
}

/** What the limits of units `open` have in use. */
async function usageOf(tx: Queryable, units: readonly AdmissionUnit[], limits: readonly LockedLimit[], open: readonly number[]): Promise<Map<number, Usage>> {
  const usage = new Map<number, Usage>();
  const single = open.filter((i) => singleKey(units[i]!) !== null);
  if (single.length > 0) {
    const { rows } = await tx.query<Usage & { i: number }>({
      name: "jobwire_admission_usage_keys",
      text: `SELECT u.i::int AS i, in_use.running, in_use.weight, window_.recent, window_."oldestRecent"
             FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS u(ns, key, rate_interval_ms, i)
             CROSS JOIN LATERAL (
               SELECT count(*)::int AS running, coalesce(sum(j.weight), 0)::int AS weight FROM job j
               WHERE j.concurrency_key IS NOT NULL AND (j.state = 'running' OR (j.state = 'pending' AND j.admitted))
                 AND j.namespace = u.ns AND j.concurrency_key = u.key
             ) in_use
             CROSS JOIN LATERAL (
               -- Admissions in the rate window (none looked for without a rate limit).
               SELECT count(*)::int AS recent, min(j.admitted_at) AS "oldestRecent" FROM job j
               WHERE u.rate_interval_ms IS NOT NULL AND j.admitted_under_rate AND j.namespace = u.ns AND j.concurrency_key = u.key
                 AND j.admitted_at > clock_timestamp() - u.rate_interval_ms * interval '1 millisecond'
             ) window_`,
      values: [single.map((i) => units[i]!.namespace), single.map((i) => singleKey(units[i]!)), single.map((i) => limits[i]!.rateIntervalMs)],
    });
    for (const { i, ...used } of rows) usage.set(single[i - 1]!, normaliseUsage(used));
  }
  for (const i of open.filter((i) => singleKey(units[i]!) === null)) {
    const { rows } = await tx.query<Usage>({
      name: "jobwire_admission_usage_prefix",
      text: `SELECT in_use.running, in_use.weight, window_.recent, window_."oldestRecent"
             FROM (SELECT count(*)::int AS running, coalesce(sum(j.weight), 0)::int AS weight FROM job j
                   WHERE j.concurrency_key IS NOT NULL AND (j.state = 'running' OR (j.state = 'pending' AND j.admitted)) AND ${governedBy("$1", "$3")}) in_use,
                  (SELECT count(*)::int AS recent, min(j.admitted_at) AS "oldestRecent" FROM job j
                   WHERE $2::int IS NOT NULL AND j.admitted_under_rate AND j.concurrency_key IS NOT NULL
                     AND j.admitted_at > clock_timestamp() - $2::int * interval '1 millisecond' AND ${governedBy("$1", "$3")}) window_`,
      values: [units[i]!.limitKey, limits[i]!.rateIntervalMs, units[i]!.namespace],
    });
    usage.set(i, normaliseUsage(rows[0]!));
  }
  return usage;
}

/** Up to `slots` waiting jobs of each unit, in admission order. */
async function waitingOf(tx: Queryable, units: readonly AdmissionUnit[], slots: ReadonlyMap<number, number>): Promise<Map<number, WaitingJob[]>> {
  const waiting = new Map<number, WaitingJob[]>();
  const add = (i: number, job: WaitingJob) => {
    const jobs = waiting.get(i) ?? [];
    jobs.push({ ...job, runAt: new Date(job.runAt) });
    waiting.set(i, jobs);
  };
  const single = [...slots.keys()].filter((i) => singleKey(units[i]!) !== null);
  if (single.length > 0) {
    const { rows } = await tx.query<WaitingJob & { i: number }>({
      name: "jobwire_admission_waiting_keys",
      text: `SELECT u.i::int AS i, ${waitingColumns}
             FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS u(ns, key, slots, i)
             CROSS JOIN LATERAL (
               SELECT j.id, j.weight, j.namespace, j.queue, j.kind, j.priority, j.run_at FROM job j
               WHERE j.state = 'pending' AND NOT j.admitted AND j.namespace = u.ns AND j.concurrency_key = u.key
               ORDER BY j.priority DESC, j.run_at, j.id LIMIT u.slots
             ) w
             LEFT JOIN queue q ON q.namespace = w.namespace AND q.name = w.queue
             ORDER BY u.i, w.priority DESC, w.run_at, w.id`,
      values: [single.map((i) => units[i]!.namespace), single.map((i) => singleKey(units[i]!)), single.map((i) => slots.get(i)!)],
    });
    for (const { i, ...job } of rows) add(single[i - 1]!, job);
  }
  for (const i of [...slots.keys()].filter((i) => singleKey(units[i]!) === null)) {
    const { rows } = await tx.query<WaitingJob>({
      name: "jobwire_admission_waiting_prefix",
      text: `SELECT ${waitingColumns}
             FROM (SELECT j.id, j.weight, j.namespace, j.queue, j.kind, j.priority, j.run_at FROM job j
                   WHERE j.state = 'pending' AND NOT j.admitted AND j.concurrency_key IS NOT NULL AND ${governedBy("$1", "$3")}
                   ORDER BY j.priority DESC, j.run_at, j.id LIMIT $2) w
             LEFT JOIN queue q ON q.namespace = w.namespace AND q.name = w.queue
             ORDER BY w.priority DESC, w.run_at, w.id`,
      values: [units[i]!.limitKey, slots.get(i)!, units[i]!.namespace],
    });
    for (const job of rows) add(i, job);
  }
  return waiting;
}

function normaliseUsage(row: Usage): Usage {
  return { ...row, oldestRecent: row.oldestRecent === null ? null : new Date(row.oldestRecent) };
}

/**
 * When a limit may admit again by itself, having admitted `admitted` jobs of `choice`:
 * the end of its pause or full rate window, or a rate window from now if these
 * admissions filled it; null if only a finished job can free it.
 */
export function nextAdmissionAt(choice: AdmissionChoice, admitted: number): Date | null {
  if (choice.heldUntil) return choice.heldUntil;
  if (choice.rateLeft !== null && admitted > 0 && admitted >= choice.rateLeft) return new Date(Date.now() + choice.rateIntervalMs!);
  return null;
}
