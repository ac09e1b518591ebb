import { Migration } from "@mikro-orm/migrations";

/**
 * The base schema: queues, jobs with their phases, and the append-only event log.
 * Invariants live here as constraints, so that no code path can break them: timestamps
 * are ordered, `finished_at` is set exactly for terminal states, and a lease exists
 * exactly while a job is running.
 */
export class Migration0001InitialSchema extends Migration {
  override up(): void {
    this.addSql(`
      CREATE TYPE job_state AS ENUM (
        'scheduled', 'pending', 'blocked', 'paused', 'running', 'succeeded', 'failed', 'cancelled'
      );
      CREATE TYPE phase_state AS ENUM ('pending', 'succeeded', 'cancelled');

      CREATE TABLE queue (
        name text PRIMARY KEY CONSTRAINT queue_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
      );

      -- No foreign key to queue: every insert would take a KEY SHARE lock on the same queue
      -- row, which serialises concurrent enqueues on multixacts. Enqueue creates the queue
      -- row in the same statement instead.
      CREATE TABLE job (
        id uuid PRIMARY KEY,
        queue text NOT NULL,
        kind text NOT NULL CONSTRAINT job_kind_format CHECK (kind ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
        state job_state NOT NULL,
        priority smallint NOT NULL DEFAULT 0 CONSTRAINT job_priority_range CHECK (priority BETWEEN -1000 AND 1000),
        payload jsonb NOT NULL DEFAULT 'null',
        metadata jsonb NOT NULL DEFAULT '{}' CONSTRAINT job_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
        owner text NOT NULL,
        attempt integer NOT NULL DEFAULT 0 CONSTRAINT job_attempt_range CHECK (attempt >= 0),
        max_attempts integer NOT NULL CONSTRAINT job_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 100000),
        backoff_initial_ms bigint NOT NULL CHECK (backoff_initial_ms >= 0),
        backoff_max_ms bigint NOT NULL CHECK (backoff_max_ms >= backoff_initial_ms),
        backoff_multiplier double precision NOT NULL CHECK (backoff_multiplier >= 1),
        backoff_jitter double precision NOT NULL CHECK (backoff_jitter BETWEEN 0 AND 1),
        lease_timeout_ms integer NOT NULL CHECK (lease_timeout_ms > 0),
        execution_timeout_ms integer CHECK (execution_timeout_ms > 0),
        run_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        started_at timestamptz,
        finished_at timestamptz,
        lease_token bigint,
        lease_worker text,
        lease_expires_at timestamptz,
        cancel_requested_at timestamptz,
        cancel_reason text,
        progress jsonb,
        result jsonb,
        last_error jsonb,
        CONSTRAINT job_started_after_created CHECK (started_at >= created_at),
        CONSTRAINT job_finished_after_started CHECK (finished_at >= created_at AND finished_at >= coalesce(started_at, created_at)),
        CONSTRAINT job_finished_iff_terminal CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
        CONSTRAINT job_succeeded_was_started CHECK (state <> 'succeeded' OR started_at IS NOT NULL),
        CONSTRAINT job_lease_iff_running CHECK (
          (state = 'running') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL AND started_at IS NOT NULL)
        ),
        CONSTRAINT job_result_iff_succeeded CHECK (result IS NULL OR state = 'succeeded')
      );

      -- The claim path: ready jobs of a queue in lease order. Partial, so it only holds the
      -- jobs that can be leased and stays small however large the history grows.
      CREATE INDEX job_claim_idx ON job (queue, priority DESC, run_at, id) WHERE state = 'pending';
      -- Scheduled wake-ups: the next due run_at.
      CREATE INDEX job_scheduled_idx ON job (run_at) WHERE state = 'scheduled';
      -- The lease reaper: running jobs by lease expiry.
      CREATE INDEX job_lease_expiry_idx ON job (lease_expires_at) WHERE state = 'running';
      -- ListJobs by queue, newest first.
      CREATE INDEX job_queue_id_idx ON job (queue, id);

      CREATE TABLE job_phase (
        job_id uuid NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        position smallint NOT NULL,
        name text NOT NULL,
        state phase_state NOT NULL DEFAULT 'pending',
        result jsonb,
        finished_at timestamptz,
        PRIMARY KEY (job_id, position),
        CONSTRAINT job_phase_name_unique UNIQUE (job_id, name),
        CONSTRAINT job_phase_finished_iff_done CHECK ((state = 'pending') = (finished_at IS NULL)),
        CONSTRAINT job_phase_result_iff_succeeded CHECK (result IS NULL OR state = 'succeeded')
      );

      -- Append-only. tx_id records the writing transaction so that readers can tell when
      -- every event below an id has committed (transactions commit out of id order).
      -- No foreign key to job: events outlive the jobs that retention deletes.
      CREATE TABLE job_event (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
        job_id uuid NOT NULL,
        queue text NOT NULL,
        type text NOT NULL,
        attempt integer NOT NULL,
        data jsonb NOT NULL DEFAULT '{}',
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX job_event_job_idx ON job_event (job_id, id);

      -- Fencing tokens: every lease gets a new, larger one.
      CREATE SEQUENCE job_lease_token_seq AS bigint;
    `);
  }
}
