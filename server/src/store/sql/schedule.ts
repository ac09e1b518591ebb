import type { MissedTickPolicyName } from "../../schedules/missed-ticks.js";
import type { Queryable } from "../transaction.js";

/** A cron schedule as stored (table `schedule`, migration 0009). */
export interface ScheduleRow {
  id: string;
  /** The namespace it is in, and enqueues its jobs in; its name is unique there. */
  namespace: string;
  name: string;
  cron: string;
  timeZone: string;
  /** The JobSpec in proto3 JSON form. */
  template: Record<string, unknown>;
  missedTickPolicy: MissedTickPolicyName;
  owner: string;
  paused: boolean;
  nextRunAt: Date | null;
  lastTickAt: Date | null;
  lastJobId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** How a request names a schedule. */
export type ScheduleKey = { id: string } | { name: string };

/** A schedule to create; `nextRunAt` is null when it starts paused. */
export type NewSchedule = Omit<ScheduleRow, "paused" | "lastTickAt" | "lastJobId" | "createdAt" | "updatedAt">;

const columns = `id, namespace, name, cron, time_zone AS "timeZone", template, missed_tick_policy AS "missedTickPolicy",
  owner, paused, next_run_at AS "nextRunAt", last_tick_at AS "lastTickAt", last_job_id AS "lastJobId",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/**
 * `WHERE` condition and parameters selecting the schedule `key` names in `namespace`, as
 * parameters `$n` and `$n+1`.
 */
function keyCondition(namespace: string, key: ScheduleKey, n: number): [string, string[]] {
  return ["id" in key ? `id = $${n} AND namespace = $${n + 1}` : `name = $${n} AND namespace = $${n + 1}`, ["id" in key ? key.id : key.name, namespace]];
}

/**
 * Creates a schedule. A name already taken raises the unique violation of constraint
 * `schedule_name_unique` (Postgres code 23505), which the caller maps to ALREADY_EXISTS.
 */
export async function scheduleInsert(db: Queryable, schedule: NewSchedule): Promise<ScheduleRow> {
  const result = await db.query<ScheduleRow>(
    `INSERT INTO schedule (id, name, cron, time_zone, template, missed_tick_policy, owner, paused, next_run_at, namespace)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${columns}`,
    [schedule.id, schedule.name, schedule.cron, schedule.timeZone, schedule.template, schedule.missedTickPolicy,
      schedule.owner, schedule.nextRunAt === null, schedule.nextRunAt, schedule.namespace],
  );
  return scheduleRowFromSql(result.rows[0]!);
}

/** The schedule `key` names in `namespace`, locked for update when `forUpdate`; undefined if none. */
export async function scheduleSelect(db: Queryable, namespace: string, key: ScheduleKey, forUpdate = false): Promise<ScheduleRow | undefined> {
  const [condition, values] = keyCondition(namespace, key, 1);
  const result = await db.query<ScheduleRow>(`SELECT ${columns} FROM schedule WHERE ${condition} ${forUpdate ? "FOR UPDATE" : ""}`, values);
  return result.rows[0] && scheduleRowFromSql(result.rows[0]);
}

/** Up to `limit` schedules of `namespace` in name order, after the name `afterName` if given. */
export async function scheduleList(db: Queryable, namespace: string, limit: number, afterName: string | undefined): Promise<ScheduleRow[]> {
  const result = await db.query<ScheduleRow>(
    `SELECT ${columns} FROM schedule WHERE namespace = $3 AND ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2`,
    [afterName ?? null, limit, namespace],
  );
  return result.rows.map(scheduleRowFromSql);
}

/**
 * Deletes a schedule; returns whether it existed. A replica enqueueing one of its ticks holds
 * the row lock: the delete waits for that tick to commit, and no tick follows it.
 */
export async function scheduleDelete(db: Queryable, namespace: string, key: ScheduleKey): Promise<boolean> {
  const [condition, values] = keyCondition(namespace, key, 1);
  return ((await db.query(`DELETE FROM schedule WHERE ${condition}`, values)).rowCount ?? 0) > 0;
}

/** Pauses an active schedule; undefined if `key` names no active schedule. */
export async function schedulePause(db: Queryable, namespace: string, key: ScheduleKey): Promise<ScheduleRow | undefined> {
  const [condition, values] = keyCondition(namespace, key, 1);
  const result = await db.query<ScheduleRow>(
    `UPDATE schedule SET paused = true, next_run_at = NULL, updated_at = clock_timestamp()
     WHERE ${condition} AND NOT paused RETURNING ${columns}`,
    values,
  );
  return result.rows[0] && scheduleRowFromSql(result.rows[0]);
}

/** Resumes a paused schedule (locked by the caller) with its next tick. */
export async function scheduleResume(db: Queryable, id: string, nextRunAt: Date): Promise<ScheduleRow> {
  const result = await db.query<ScheduleRow>(
    `UPDATE schedule SET paused = false, next_run_at = $2, updated_at = clock_timestamp()
     WHERE id = $1 AND paused RETURNING ${columns}`,
    [id, nextRunAt],
  );
  return scheduleRowFromSql(result.rows[0]!);
}

/** The database's clock, for computing ticks from the same now as every other time. */
export async function databaseNow(db: Queryable): Promise<Date> {
  const result = await db.query<{ now: number }>("SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now");
  return new Date(Math.floor(Number(result.rows[0]!.now)));
}

/** The ORM's pool hands timestamps back as text. */
export function scheduleRowFromSql(row: ScheduleRow): ScheduleRow {
  const date = (value: Date | string | null) => (value === null ? null : new Date(value));
  return {
    ...row,
    nextRunAt: date(row.nextRunAt),
    lastTickAt: date(row.lastTickAt),
    createdAt: date(row.createdAt)!,
    updatedAt: date(row.updatedAt)!,
  };
}
