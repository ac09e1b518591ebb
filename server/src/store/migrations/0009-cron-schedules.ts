import { Migration } from "@mikro-orm/migrations";

/**
 * Cron schedules. A schedule row holds its next tick (`next_run_at`); a replica claims a due
 * schedule with `FOR UPDATE SKIP LOCKED` and, in one transaction, enqueues the tick's job and
 * advances `next_run_at`. Jobs record the schedule and tick they were enqueued for, and a
 * unique index on the pair makes a second job for the same tick impossible, whatever races.
 * The index is partial: jobs enqueued otherwise (schedule_id null) cost it nothing.
 */
export class Migration0009CronSchedules extends Migration {
  override up(): void {
    this.addSql(`
      CREATE TYPE missed_tick_policy AS ENUM ('latest', 'skip', 'all');

      CREATE TABLE schedule (
        id uuid PRIMARY KEY,
        name text NOT NULL CONSTRAINT schedule_name_unique UNIQUE
          CONSTRAINT schedule_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
        cron text NOT NULL CONSTRAINT schedule_cron_length CHECK (length(cron) BETWEEN 1 AND 256),
        time_zone text NOT NULL,
        -- The JobSpec in its proto3 JSON form, validated when the schedule was created.
        template jsonb NOT NULL CONSTRAINT schedule_template_object CHECK (jsonb_typeof(template) = 'object'),
        missed_tick_policy missed_tick_policy NOT NULL,
        owner text NOT NULL,
        paused boolean NOT NULL DEFAULT false,
        next_run_at timestamptz,
        last_tick_at timestamptz,
        last_job_id uuid,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        -- An active schedule always has a next tick; a paused one has none (resuming computes it).
        CONSTRAINT schedule_next_run_iff_active CHECK (paused = (next_run_at IS NULL)),
        CONSTRAINT schedule_last_job_with_tick CHECK ((last_tick_at IS NULL) = (last_job_id IS NULL))
      );
      -- The scheduler's claim and its timer: the earliest due active schedule.
      CREATE INDEX schedule_due_idx ON schedule (next_run_at) WHERE NOT paused;

      -- No foreign key to schedule: jobs outlive the schedules that enqueued them.
      ALTER TABLE job ADD COLUMN schedule_id uuid, ADD COLUMN schedule_tick timestamptz,
        ADD CONSTRAINT job_schedule_tick_pair CHECK ((schedule_id IS NULL) = (schedule_tick IS NULL));
      CREATE UNIQUE INDEX job_schedule_tick_unique ON job (schedule_id, schedule_tick) WHERE schedule_id IS NOT NULL;
    `);
  }
}
