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

/** A unit waiting for admission, its limit row locked for the caller's transaction. */
export interface LockedUnit extends AdmissionUnit {
  limit: ConcurrencyLimitRow & { paused: boolean };
}

/**
 * Finds what waits for admission in `namespaces` and locks its limits, in one statement:
 * each limit governing waiting jobs, and for a per-key limit each of its keys with waiting
 * jobs, in (namespace, limit, key) order, which is the order their rows are locked in, so
 * that replicas cannot deadlock. Walks the distinct keys of waiting jobs through their
 * index (one probe per key, whatever the backlog). The rows come back as they are once
 * locked: a limit changed by another replica's pass meanwhile is read as changed.
 */
export async function lockWaitingUnits(tx: Queryable, namespaces: readonly string[]): Promise<LockedUnit[]> {
  const result = await tx.query<ConcurrencyLimitRow & { namespace: string; waitingKey: string; paused: boolean }>({
    name: "jobwire_admission_lock_waiting",
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
           SELECT w.ns AS namespace, w.k AS "waitingKey", ${limitColumns}, coalesce(l.paused_until > clock_timestamp(), false) AS paused
           FROM waiting w
           CROSS JOIN LATERAL (SELECT jobwire_governing_limit(w.ns, w.k) AS governing) g
           JOIN concurrency_limit l ON l.namespace = w.ns AND l.key = g.governing
           WHERE w.k IS NOT NULL AND w.ns = ANY($1::text[])
           ORDER BY w.ns, l.key, w.k
           FOR UPDATE OF l`,
    values: [namespaces],
  });
  const units = new Map<string, LockedUnit>();
  for (const { namespace, waitingKey, paused, ...limit } of result.rows) {
    const onlyKey = limit.perKey ? waitingKey : null;
    const id = `${namespace}\u0000${limit.key}\u0000${onlyKey ?? ""}`;
    if (!units.has(id)) units.set(id, { namespace, limitKey: limit.key, onlyKey, limit: { ...normalise(limit), paused } });
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
export function singleKey(unit: AdmissionUnit): string | null {
  return unit.limitKey.endsWith("*") ? unit.onlyKey : unit.limitKey;
}

/**
 * Chooses the jobs each locked unit's limit may admit now, in the caller's transaction
 * (after {@link lockWaitingUnits}, so that the counts see every admission committed before
 * the locks were granted): counts what each has in use (admitted pending and running jobs,
 * their weight, admissions in the rate window), and takes waiting jobs in priority,
 * run_at, id order while all bounds hold, at most `budget(unit)` of them. A job too heavy
 * for the weight left waits, and so do the jobs behind it: no job is overtaken for ever.
 * Units of one key (the common case) are counted and read together, in one statement; a
 * limit that bounds a prefix's keys together is read on its own. The caller admits (or
 * leases) the chosen jobs before it commits. Returns one choice per unit, in order.
 */
export async function admissibleJobs(tx: Queryable, units: readonly LockedUnit[], budget: (unit: AdmissionUnit) => number): Promise<AdmissionChoice[]> {
  const choices: AdmissionChoice[] = units.map(({ limit }) => ({
    jobs: [],
    underRate: limit.rateCount !== null,
    rateLeft: null,
    rateIntervalMs: limit.rateIntervalMs,
    heldUntil: limit.paused ? limit.pausedUntil : null,
  }));
  const open = units.flatMap((unit, i) => (unit.limit.paused ? [] : [i]));
  const read = new Map<number, { used: Usage; waiting: WaitingJob[] }>();
  const single = open.filter((i) => singleKey(units[i]!) !== null);
  if (single.length > 0) {
    for (const [n, found] of await readKeyUnits(tx, single.map((i) => ({ unit: units[i]!, budget: budget(units[i]!) })))) read.set(single[n]!, found);
  }
  for (const i of open.filter((i) => singleKey(units[i]!) === null)) read.set(i, await readPrefixUnit(tx, units[i]!, budget(units[i]!)));
  for (const [i, { used, waiting }] of read) {
    const { limit } = units[i]!;
    const choice = choices[i]!;
    choice.rateLeft = limit.rateCount === null ? null : limit.rateCount - used.recent;
    if (choice.rateLeft !== null && choice.rateLeft <= 0 && used.oldestRecent) {
      choice.heldUntil = new Date(used.oldestRecent.getTime() + limit.rateIntervalMs!);
    }
    let slots = slotsFree(limit, used, budget(units[i]!));
    let weightLeft = limit.maxWeight === null ? Number.POSITIVE_INFINITY : limit.maxWeight - used.weight;
    for (const { weight, ...job } of waiting) {
      if (weight > weightLeft || slots <= 0) break;
      weightLeft -= weight;
      slots--;
      choice.jobs.push(job);
    }
  }
  return choices;
}

/** How many more jobs a limit may admit: the least of its running and rate bounds' room and `budget`. */
function slotsFree(limit: ConcurrencyLimitRow, used: Usage, budget: number): number {
  return Math.min(limit.maxRunning === null ? budget : limit.maxRunning - used.running, limit.rateCount === null ? budget : limit.rateCount - used.recent, budget);
}

/** A row of {@link readKeyUnits}: a unit's usage, and one of its waiting jobs (its columns all null if none). */
type KeyUnitRow = WaitingJob & { i: number; running: number; usedWeight: number; recent: number; oldestRecent: Date | null };

/**
 * Counts what each one-key unit has in use and reads its first waiting jobs, as many as its
 * limit has room for (the same bound as {@link slotsFree}) and no more, across the units of
 * a namespace, than its budget (the pass could not place more), all in one statement.
 *
 * A unit reads at most twice an even share of its namespace's budget (shared by the units
 * with room): while other keys wait, a key whose backlog is older takes no more of a pass
 * than that, and the read stays near the budget whatever the number of keys. Without the
 * share, 8 keys read 2,048 rows for a pass of 278 (8 ms of a 40 ms pass, idle). Passes
 * over one-key limits without a rate, the common case, do not come here: they read one
 * share per key, in SQL (`jobLeaseAdmissible`).
 */
async function readKeyUnits(
  tx: Queryable,
  reads: readonly { unit: LockedUnit; budget: number }[],
): Promise<Map<number, { used: Usage; waiting: WaitingJob[] }>> {
  const { rows } = await tx.query<KeyUnitRow>({
    name: "jobwire_admission_read_keys",
    text: `WITH counted AS (
             SELECT u.*, in_use.running, in_use.weight, window_.recent, window_."oldestRecent",
                    least(coalesce(u.max_running - in_use.running, u.budget), coalesce(u.rate_count - window_.recent, u.budget), u.budget) AS slots
             FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[])
                    WITH ORDINALITY AS u(ns, key, max_running, rate_count, rate_interval_ms, budget, i)
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
             ) window_
           )
           , usage AS (
             SELECT c.*, ceil(2.0 * c.budget / greatest(count(*) FILTER (WHERE c.slots > 0) OVER (PARTITION BY c.ns), 1))::int AS share
             FROM counted c
           )
           , read AS (
             SELECT usage.i::int AS i, usage.running, usage.weight AS "usedWeight", usage.recent, usage."oldestRecent", ${waitingColumns},
                    -- Across the namespace's units, in the order the pass leases in: no
                    -- more of them can be placed than the budget, whatever each unit's room.
                    row_number() OVER (PARTITION BY usage.ns ORDER BY coalesce(q.priority, 0) DESC, w.priority DESC, w.run_at, w.id) AS rank,
                    usage.budget
             FROM usage
             LEFT JOIN LATERAL (
               SELECT j.id, j.weight, j.namespace, j.queue, j.kind, j.priority, j.run_at FROM job j
               WHERE j.state = 'pending' AND NOT j.admitted AND j.namespace = usage.ns AND j.concurrency_key = usage.key
               ORDER BY j.priority DESC, j.run_at, j.id LIMIT greatest(least(usage.slots, usage.share), 0)
             ) w ON true
             LEFT JOIN queue q ON q.namespace = w.namespace AND q.name = w.queue
           )
           -- A unit without a waiting job keeps its one row of counts; a unit whose jobs
           -- all fall past the budget is left out (it admits nothing this pass).
           SELECT * FROM read WHERE id IS NULL OR rank <= budget
           ORDER BY i, priority DESC, "runAt", id`,
    values: [
      reads.map(({ unit }) => unit.namespace),
      reads.map(({ unit }) => singleKey(unit)),
      reads.map(({ unit }) => unit.limit.maxRunning),
      reads.map(({ unit }) => unit.limit.rateCount),
      reads.map(({ unit }) => unit.limit.rateIntervalMs),
      reads.map(({ budget }) => budget),
    ],
  });
  const read = new Map<number, { used: Usage; waiting: WaitingJob[] }>();
  for (const row of rows) {
    const n = row.i - 1;
    let found = read.get(n);
    if (!found) {
      found = { used: normaliseUsage({ running: row.running, weight: row.usedWeight, recent: row.recent, oldestRecent: row.oldestRecent }), waiting: [] };
      read.set(n, found);
    }
    if (row.id !== null) found.waiting.push(waitingJob(row));
  }
  return read;
}

/** Counts what a prefix unit (keys bounded together) has in use, and reads its first waiting jobs. */
async function readPrefixUnit(tx: Queryable, unit: LockedUnit, budget: number): Promise<{ used: Usage; waiting: WaitingJob[] }> {
  const { rows: usage } = await tx.query<Usage>({
    name: "jobwire_admission_usage_prefix",
    text: `SELECT in_use.running, in_use.weight, window_.recent, window_."oldestRecent"
           FROM (SELECT count(*)::int AS running, coalesce(sum(j.weight), 0)::int AS weight FROM job j
                 WHERE j.concurrency_key IS NOT NULL AND (j.state = 'running' OR (j.state = 'pending' AND j.admitted)) AND ${governedBy("$1", "$3")}) in_use,
                (SELECT count(*)::int AS recent, min(j.admitted_at) AS "oldestRecent" FROM job j
                 WHERE $2::int IS NOT NULL AND j.admitted_under_rate AND j.concurrency_key IS NOT NULL
                   AND j.admitted_at > clock_timestamp() - $2::int * interval '1 millisecond' AND ${governedBy("$1", "$3")}) window_`,
    values: [unit.limitKey, unit.limit.rateIntervalMs, unit.namespace],
  });
  const used = normaliseUsage(usage[0]!);
  const slots = slotsFree(unit.limit, used, budget);
  if (slots <= 0) return { used, waiting: [] };
  const { rows } = await tx.query<WaitingJob>({
    name: "jobwire_admission_waiting_prefix",
    text: `SELECT ${waitingColumns}
           FROM (SELECT j.id, j.weight, j.namespace, j.queue, j.kind, j.priority, j.run_at FROM job j
                 WHERE j.state = 'pending' AND NOT j.admitted AND j.concurrency_key IS NOT NULL AND ${governedBy("$1", "$3")}
                 ORDER BY j.priority DESC, j.run_at, j.id LIMIT $2) w
           LEFT JOIN queue q ON q.namespace = w.namespace AND q.name = w.queue
           ORDER BY w.priority DESC, w.run_at, w.id`,
    values: [unit.limitKey, slots, unit.namespace],
  });
  return { used, waiting: rows.map(waitingJob) };
}

function waitingJob(row: WaitingJob): WaitingJob {
  return {
    id: row.id,
    weight: row.weight,
    namespace: row.namespace,
    queue: row.queue,
    kind: row.kind,
    priority: row.priority,
    runAt: new Date(row.runAt),
    queuePriority: row.queuePriority,
    queuePaused: row.queuePaused,
  };
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
