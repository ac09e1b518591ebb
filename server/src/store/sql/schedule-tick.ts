import type { MissedTickPolicyName } from "../../schedules/missed-ticks.js";
import type { Queryable } from "../transaction.js";

/** A due schedule, claimed (row-locked) by this transaction. */
export interface DueSchedule {
  id: string;
  name: string;
  cron: string;
  timeZone: string;
  template: Record<string, unknown>;
  missedTickPolicy: MissedTickPolicyName;
  /** The namespace its jobs are enqueued in. */
  namespace: string;
  owner: string;
  nextRunAt: Date;
  /** The database's clock when the schedule was claimed. */
  now: Date;
}

/**
 * Claims the earliest due active schedule for the calling transaction, skipping those other
 * replicas hold and those in `excludedIds`; undefined when none is due. Under READ
 * COMMITTED a row another replica advanced meanwhile is re-checked against the condition
 * after its lock is released, so a tick already enqueued is never claimed again.
 */
export async function scheduleClaimDue(db: Queryable, excludedIds: readonly string[]): Promise<DueSchedule | undefined> {
  const result = await db.query<Omit<DueSchedule, "nextRunAt" | "now"> & { nextRunAtMs: number; nowMs: number }>(
    `SELECT id, name, cron, time_zone AS "timeZone", template, missed_tick_policy AS "missedTickPolicy", namespace, owner,
            extract(epoch FROM next_run_at) * 1000 AS "nextRunAtMs", extract(epoch FROM clock_timestamp()) * 1000 AS "nowMs"
     FROM schedule
     WHERE NOT paused AND next_run_at <= clock_timestamp() AND id <> ALL($1::uuid[])
     ORDER BY next_run_at LIMIT 1
     FOR UPDATE SKIP LOCKED`,
    [excludedIds],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  const { nextRunAtMs, nowMs, ...rest } = row;
  return { ...rest, nextRunAt: new Date(Math.round(Number(nextRunAtMs))), now: new Date(Math.floor(Number(nowMs))) };
}

/** Which of `ticks` of schedule `scheduleId` already have a job (epoch milliseconds). */
export async function jobScheduleTicksExisting(db: Queryable, scheduleId: string, ticks: readonly Date[]): Promise<Set<number>> {
  const result = await db.query<{ tickMs: number }>(
    `SELECT extract(epoch FROM schedule_tick) * 1000 AS "tickMs" FROM job
     WHERE schedule_id = $1 AND schedule_tick = ANY($2::timestamptz[])`,
    [scheduleId, ticks],
  );
  return new Set(result.rows.map((row) => Math.round(Number(row.tickMs))));
}

/**
 * Records on just-inserted jobs the schedule and tick they were enqueued for. The unique
 * index `job_schedule_tick_unique` refuses a second job for a tick: the transaction fails
 * and nothing of it is written.
 */
export async function jobLinkScheduleTicks(db: Queryable, scheduleId: string, jobIds: readonly string[], ticks: readonly Date[]): Promise<void> {
  await db.query(
    `UPDATE job j SET schedule_id = $1, schedule_tick = t.tick
     FROM unnest($2::uuid[], $3::timestamptz[]) AS t(id, tick) WHERE j.id = t.id`,
    [scheduleId, jobIds, ticks],
  );
}

/** Moves a claimed schedule on to its next tick, recording the last job enqueued if any. */
export async function scheduleAdvance(db: Queryable, id: string, nextRunAt: Date, last: { tick: Date; jobId: string } | undefined): Promise<void> {
  await db.query(
    `UPDATE schedule SET next_run_at = $2, updated_at = clock_timestamp(),
       last_tick_at = coalesce($3, last_tick_at), last_job_id = coalesce($4, last_job_id)
     WHERE id = $1`,
    [id, nextRunAt, last?.tick ?? null, last?.jobId ?? null],
  );
}

/**
 * Milliseconds from the database's now until the earliest next tick of an active schedule
 * not in `excludedIds` (negative when one is due); null when there is none.
 */
export async function scheduleNextDueMs(db: Queryable, excludedIds: readonly string[]): Promise<number | null> {
  const result = await db.query<{ ms: number | null }>(
    `SELECT extract(epoch FROM min(next_run_at) - clock_timestamp()) * 1000 AS ms
     FROM schedule WHERE NOT paused AND id <> ALL($1::uuid[])`,
    [excludedIds],
  );
  const ms = result.rows[0]!.ms;
  return ms === null ? null : Number(ms);
}
