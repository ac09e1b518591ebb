import { Migration } from "@mikro-orm/migrations";

/**
 * Idempotency keys and pausing.
 *
 * - `job.idempotency_key` records the key a job was enqueued with, for reading only. Which
 *   job *holds* a key is the `idempotency_key` table: one row per (queue, owner, key), pointing at
 *   the holder. Its primary key is what makes concurrent enqueues with one key create one
 *   job, on any number of replicas; when the holder's window has passed, the next enqueue
 *   moves the row to its new job. Keeping holders out of `job` lets the old job keep its
 *   key for display, costs keyless jobs no index at all, and needs no sweep: retention
 *   deletes a holder's row together with the job.
 * - `job.paused_from` is the state a PAUSED job returns to; the CHECK ties it to the state.
 * - `queue.paused_at` marks a paused queue, which the claim statement skips, and
 *   `queue.idempotency_window_ms` is the queue's window after a holder finished.
 */
export class Migration0008IdempotencyAndPause extends Migration {
  override up(): void {
    this.addSql(`
      ALTER TABLE job
        ADD COLUMN idempotency_key text,
        ADD COLUMN paused_from job_state,
        ADD CONSTRAINT job_paused_from_iff_paused CHECK ((state = 'paused') = (paused_from IS NOT NULL)),
        ADD CONSTRAINT job_paused_from_waiting CHECK (paused_from IN ('scheduled', 'pending', 'blocked'));

      -- Keys are scoped to the principal that enqueues: another principal's key never
      -- deduplicates to (and so reveals) a job it may not see.
      CREATE TABLE idempotency_key (
        queue text NOT NULL,
        owner text NOT NULL,
        key text NOT NULL,
        job_id uuid NOT NULL,
        PRIMARY KEY (queue, owner, key)
      );

      ALTER TABLE queue
        ADD COLUMN paused_at timestamptz,
        ADD COLUMN idempotency_window_ms bigint CHECK (idempotency_window_ms >= 0);
    `);
  }
}
