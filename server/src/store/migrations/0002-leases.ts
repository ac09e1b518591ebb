import { Migration } from "@mikro-orm/migrations";

/**
 * What leasing needs beyond the base schema:
 * - `deadline_at`, the execution deadline of the running attempt;
 * - the lease token stays on the row after the attempt ends, naming the last lease, so that
 *   a repeated CompleteJob/FailJob with that lease can be answered OK;
 * - an index to release a worker's leases when its stream closes;
 * - triggers that NOTIFY dispatchers whenever jobs become pending or scheduled, whatever
 *   statement did it, so no code path can forget a wake-up. NOTIFY is transactional: it
 *   is delivered on commit, and never for a rolled-back change.
 */
export class Migration0002Leases extends Migration {
  override up(): void {
    this.addSql(`
      ALTER TABLE job ADD COLUMN deadline_at timestamptz;
      ALTER TABLE job DROP CONSTRAINT job_lease_iff_running;
      ALTER TABLE job ADD CONSTRAINT job_lease_expiry_iff_running CHECK ((state = 'running') = (lease_expires_at IS NOT NULL));
      ALTER TABLE job ADD CONSTRAINT job_running_has_lease CHECK (state <> 'running' OR (lease_token IS NOT NULL AND lease_worker IS NOT NULL AND started_at IS NOT NULL));
      ALTER TABLE job ADD CONSTRAINT job_deadline_only_running CHECK (deadline_at IS NULL OR state = 'running');

      CREATE INDEX job_lease_worker_idx ON job (lease_worker) WHERE state = 'running';
      CREATE INDEX job_deadline_idx ON job (deadline_at) WHERE state = 'running' AND deadline_at IS NOT NULL;
      CREATE INDEX job_cancel_requested_idx ON job (cancel_requested_at) WHERE state = 'running' AND cancel_requested_at IS NOT NULL;

      CREATE FUNCTION jobwire_notify_ready() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('jobwire_ready', q.queue)
        FROM (SELECT DISTINCT queue FROM changed_jobs WHERE state = 'pending') q;
        PERFORM pg_notify('jobwire_scheduled', (extract(epoch FROM min(run_at)) * 1000)::bigint::text)
        FROM changed_jobs WHERE state = 'scheduled' HAVING count(*) > 0;
        RETURN NULL;
      END $$;

      CREATE TRIGGER job_inserted_notify AFTER INSERT ON job
        REFERENCING NEW TABLE AS changed_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION jobwire_notify_ready();
      CREATE TRIGGER job_updated_notify AFTER UPDATE ON job
        REFERENCING NEW TABLE AS changed_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION jobwire_notify_ready();
    `);
  }
}
