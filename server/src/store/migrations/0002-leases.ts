import { Migration } from "@mikro-orm/migrations";

/**
 * What leasing needs beyond the base schema:
 * - `deadline_at`, the execution deadline of the running attempt;
 * - the lease token stays on the row after the attempt ends, naming the last lease, so that
 *   a repeated CompleteJob/FailJob with that lease can be answered OK;
 * - indexes to release a worker's leases when its stream closes, and for the reaper.
 *
 * Wake-ups are deliberately not NOTIFYs inside these transactions (no trigger): a
 * transaction that NOTIFYs holds a global lock through its commit, which serialises every
 * committing enqueue behind one WAL flush at a time (see docs/decisions/0001).
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

    `);
  }
}
